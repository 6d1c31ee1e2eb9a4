// DNS servers for the example in the simulator: none (its Net has no DNS);
// give them with the `dns` config.

export default function dnsServers(): string[] {
  return [];
}
