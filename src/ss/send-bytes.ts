// A ready-made onTx for the common case: send one byte array, in pieces as
// large as the connection takes, SOM on the first and EOM on the last.

export function sendBytes(body: Uint8Array): (maxLength: number) => { payload: Uint8Array; flags: number } {
  let sent = 0;
  return (maxLength) => {
    const payload = body.subarray(sent, sent + maxLength);
    // SOM = 1, EOM = 2 (RxFlag): spelled out to keep this module free of imports
    const flags = (sent === 0 ? 1 : 0) | (sent + payload.length >= body.length ? 2 : 0);
    sent += payload.length;
    return { payload, flags };
  };
}
