// A ready-made onTx for the common case: send one byte array, in pieces as
// large as the connection takes, SOM on the first and EOM on the last. Each
// message starts from the first byte (the runtime says so with SOM), so a
// retry or a later transaction sends the whole array again.

export function sendBytes(body: Uint8Array): (maxLength: number, flags?: number) => { payload: Uint8Array; flags: number } {
  let sent = 0;
  // SOM = 1, EOM = 2 (RxFlag): spelled out to keep this module free of imports
  return (maxLength, flags = 0) => {
    if (flags & 1) sent = 0;
    const payload = body.subarray(sent, sent + maxLength);
    const out = (sent === 0 ? 1 : 0) | (sent + payload.length >= body.length ? 2 : 0);
    sent += payload.length;
    return { payload, flags: out };
  };
}
