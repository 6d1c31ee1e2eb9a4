// mosquitto (Debian package mosquitto) as the MQTT tests' broker: started by
// the test with a generated config on a free loopback port, plain or TLS,
// optionally with persistence, and stopped (or restarted) by the test.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";

const CANDIDATES = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"];

/** The mosquitto binary, or undefined when it is not installed. */
export function mosquittoPath(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

export interface BrokerOptions {
  /** PEM files: the listener serves TLS with them. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly caFile: string; readonly requireCertificate?: boolean };
  /** Keep sessions and queued messages on disk across a restart. */
  readonly persistence?: boolean;
  /** Extra config lines. */
  readonly extra?: readonly string[];
}

export class Broker {
  readonly port: number;
  readonly dir: string;
  readonly #conf: string;
  #child: ChildProcess | undefined;
  log = "";

  private constructor(port: number, dir: string, conf: string) {
    this.port = port;
    this.dir = dir;
    this.#conf = conf;
  }

  static async start(o: BrokerOptions = {}): Promise<Broker> {
    const dir = mkdtempSync(path.join(tmpdir(), "xs-ss-mosquitto-"));
    const port = await freePort();
    const lines = [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      // started as root, mosquitto would become user "mosquitto", who cannot read the tests' temporary files
      `user ${userInfo().username}`,
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      "max_inflight_messages 0",
      "max_queued_messages 100000",
    ];
    if (o.persistence) lines.push("persistence true", `persistence_location ${dir}/`, "autosave_interval 0");
    if (o.tls) {
      lines.push(`certfile ${o.tls.certFile}`, `keyfile ${o.tls.keyFile}`, `cafile ${o.tls.caFile}`);
      if (o.tls.requireCertificate) lines.push("require_certificate true");
    }
    lines.push(...(o.extra ?? []));
    const conf = path.join(dir, "mosquitto.conf");
    writeFileSync(conf, `${lines.join("\n")}\n`);
    const b = new Broker(port, dir, conf);
    await b.run();
    return b;
  }

  /** Starts (again) with the same config and port. */
  async run(): Promise<void> {
    const child = spawn(mosquittoPath()!, ["-c", this.#conf], { stdio: ["ignore", "ignore", "pipe"] });
    this.#child = child;
    child.stderr!.on("data", (d: Buffer) => { this.log += d.toString(); });
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited: ${this.log}`);
      if (await canConnect(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not listen on ${this.port}: ${this.log}`);
  }

  /** Stops it (SIGTERM: a persistent broker saves its database). */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, "127.0.0.1");
    c.once("connect", () => { c.destroy(); resolve(true); });
    c.once("error", () => resolve(false));
  });
}
