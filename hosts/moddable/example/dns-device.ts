// DNS servers for the example on the device: the ones DHCP gave
// (setup/network joins Wi-Fi before main runs).

import Net from "net";

export default function dnsServers(): string[] {
  return Net.get("DNS") ?? [];
}
