// The MQTT 3.1.1 binding. Streams whose policies name the same broker
// (endpoint, port, TLS, trust store, client certificate) share one MQTT
// connection, as in lws: each stream subscribes to its `mqtt_subscribe` and
// publishes what the app sends to `mqtt_topic`. A stream reports CONNECTED
// once its SUBACK (or the connection's birth PUBACK) is in, QOS_ACK_REMOTE
// for each acknowledged QoS 1/2 publish and QOS_NACK_REMOTE for one the
// broker never acknowledged after MAX_RESENDS resends with DUP. The rules,
// and where they differ from lws, are in docs/mqtt.md.
//
// The connection pool, client ids and the outbox of unacknowledged
// publishes live in the object createMqttBinding() returns, one per
// SecureStreams context: nothing here is module state.

import type { ByteStream, ConnectOptions, ConnectTimings, HostError, StreamHandlers } from "../host.js";
import { BLOB } from "../host.js";
import type { ProtocolBinding, StreamLink, Connection, ConnectionEnd } from "./binding.js";
import { State, RxFlag } from "../ss/states.js";
import {
  MqttDecoder, MqttError, packetName, Packet, ConnackCode, SUBACK_FAILURE, encodePacket, writePublishHead, publishHeadSize,
  topicMatches, topicNameFault, topicFilterFault, type MqttDecoderOptions, type MqttPacket, type PublishPacket, type QoS,
} from "../wire/mqtt/index.js";
import { utf8Encode, utf8Decode } from "../util/utf8.js";
import { outboxBlobName, saveOutbox, loadOutbox } from "./mqtt-outbox.js";

export interface MqttBindingOptions {
  /** Largest packet sent or received, fixed header included (default MQTT_MAX_PACKET). */
  readonly maxPacketBytes?: number;
  /**
   * Payload bytes of unacknowledged QoS 1/2 publishes held per broker
   * connection, when the policy gives no mqtt_outbox_bytes (default
   * MQTT_OUTBOX_BYTES). No more is taken from the apps while it is full; a
   * message larger than all of it is refused with QOS_NACK_LOCAL.
   */
  readonly outboxBytes?: number;
  /** QoS 1/2 publishes sent and not yet acknowledged, at most (default MQTT_MAX_INFLIGHT). */
  readonly maxInflight?: number;
  /** A QoS 1/2 publish not acknowledged this long is sent again with DUP (default: the context's responseTimeoutMs). */
  readonly ackTimeoutMs?: number;
  /**
   * Keep the outbox in blob storage (`mqo.<hash of the broker>`),
   * rewritten after each change, so that unacknowledged publishes survive a
   * reboot; at most this many bytes of it (a device's blob holds about 4000).
   * Off by default: on a device every change is a flash write.
   */
  readonly persistBytes?: number;
}

/** A 256 KiB payload with its topic and header. */
export const MQTT_MAX_PACKET = 256 * 1024 + 1024;
export const MQTT_OUTBOX_BYTES = 64 * 1024;
export const MQTT_MAX_INFLIGHT = 32;
/** Resends of an unacknowledged publish before QOS_NACK_REMOTE (lws' LWS_MQTT_MAX_PUBLISH_RETRY). */
export const MAX_RESENDS = 3;
/** Keep-alive when the policy gives none, in seconds. */
export const DEFAULT_KEEP_ALIVE_S = 60;
/** How often a connection looks at its keep-alive and its unacknowledged publishes. */
const TICK_MS = 1000;
/**
 * Packets written in one turn are gathered and handed to the host as one
 * write, up to this many bytes (a packet larger goes alone, uncopied): one
 * TCP segment instead of many, and no Nagle wait between a head and its payload.
 */
const GATHER_BYTES = 8192;

/** A QoS 1/2 publish taken from an app and not yet acknowledged. */
interface Outgoing {
  /** The streamtype whose app sent it: its acknowledgement goes to that stream. */
  readonly owner: string;
  /** UTF-8 bytes, checked. */
  readonly topic: Uint8Array;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
  /** Birth messages report CONNECTED instead of QOS_ACK_REMOTE. */
  readonly birth: boolean;
  packetId: number;
  /** PUBREC came: the broker has it; PUBREL is what is outstanding. */
  released: boolean;
  sent: boolean;
  sentAt: number;
  resends: number;
}

export function createMqttBinding(options: MqttBindingOptions = {}): ProtocolBinding {
  return new MqttBinding(options);
}

class MqttBinding implements ProtocolBinding {
  readonly name = "mqtt" as const;
  readonly maxPacketBytes: number;
  readonly outboxBytes: number;
  readonly maxInflight: number;
  readonly ackTimeoutMs: number | undefined;
  readonly persistBytes: number;
  /** Broker keys whose stored outbox was read (once per context). */
  readonly #loaded = new Set<string>();
  /** Live connections by broker key. */
  readonly #sessions = new Map<string, Session>();
  /** Unacknowledged publishes of connections that ended, by broker key, for the next connection there. */
  readonly #held = new Map<string, Outgoing[]>();
  /** Generated client ids by broker key: a kept session needs the same id on reconnect. */
  readonly #clientIds = new Map<string, string>();

  constructor(o: MqttBindingOptions) {
    this.maxPacketBytes = o.maxPacketBytes ?? MQTT_MAX_PACKET;
    this.outboxBytes = o.outboxBytes ?? MQTT_OUTBOX_BYTES;
    this.maxInflight = o.maxInflight ?? MQTT_MAX_INFLIGHT;
    this.ackTimeoutMs = o.ackTimeoutMs;
    this.persistBytes = o.persistBytes ?? 0;
  }

  open(link: StreamLink, connect: ConnectOptions): Connection {
    const key = brokerKey(link, connect);
    let session = this.#sessions.get(key);
    if (!session) {
      session = new Session(this, key, link, connect, this.#held.get(key) ?? this.#stored(key, link));
      this.#held.delete(key);
      this.#sessions.set(key, session);
    }
    return session.join(link);
  }

  clientId(key: string, link: StreamLink): string {
    const blob = link.host.blobs.get(BLOB.mqttClientId);
    if (blob?.length) return utf8Decode(blob, 0, blob.length) ?? "";
    let id = this.#clientIds.get(key);
    if (!id) {
      id = "xs-ss-";
      for (let i = 0; i < 16; i++) id += "0123456789abcdef"[Math.floor(link.host.random() * 16)];
      this.#clientIds.set(key, id);
    }
    return id;
  }

  /** What a previous run left in blob storage for this broker, the first time it is asked for. */
  #stored(key: string, link: StreamLink): Outgoing[] {
    if (!this.persistBytes || this.#loaded.has(key)) return [];
    this.#loaded.add(key);
    const name = outboxBlobName(key);
    let blob: Uint8Array | undefined;
    try {
      blob = link.host.blobs.get(name);
    } catch (e) {
      link.host.log(`mqtt: blob ${name} cannot be read: ${String((e as Error)?.message ?? e)}`);
    }
    if (!blob) return [];
    const stored = loadOutbox(blob);
    if (typeof stored === "string") {
      link.host.log(`mqtt: blob ${name} dropped: ${stored}`);
      link.host.blobs.delete(name);
      return [];
    }
    link.host.log(`mqtt: ${stored.length} unacknowledged publishes read back from blob ${name}`);
    return stored.map((p) => ({ ...p, birth: false, sent: false, sentAt: 0, resends: 0 }));
  }

  /** Writes a connection's outbox to its blob, when persistence is on. */
  persist(key: string, link: StreamLink, outbox: Iterable<Outgoing>): void {
    if (!this.persistBytes) return;
    this.#loaded.add(key); // what is stored now is this run's
    const left = saveOutbox(link.host.blobs, outboxBlobName(key), outbox, this.persistBytes);
    if (left) link.host.log(`mqtt: ${left} unacknowledged publishes over the ${this.persistBytes}-byte blob are not stored`);
  }

  /** The connection is over: its unacknowledged publishes wait for the next one to the same broker. */
  ended(session: Session, unacked: Outgoing[]): void {
    if (this.#sessions.get(session.key) === session) this.#sessions.delete(session.key);
    if (unacked.length) this.#held.set(session.key, unacked);
  }
}

/** Streams that may share a connection: same broker, same transport security. */
function brokerKey(link: StreamLink, c: ConnectOptions): string {
  const p = link.policy;
  const s = c.via?.socks5;
  // a connection through another route (a local socket, a SOCKS5 proxy or its credentials) is another connection
  return `${c.tls ? "tls" : "tcp"}|${c.host}|${c.port}|${p.trustStore?.name ?? ""}|${p.number("client_cert") ?? ""}` +
    (c.path !== undefined ? `|path:${c.path}` : "") +
    (s ? `|socks5:${s.username ?? ""}:${s.password ?? ""}@${s.host}:${s.port}` : "");
}

type Phase = "connecting" | "connack" | "up" | "closed";

/** One MQTT connection to a broker, and the streams on it. */
class Session implements StreamHandlers, MqttDecoderOptions {
  readonly key: string;
  readonly #binding: MqttBinding;
  readonly #link0: StreamLink;
  readonly #members: Member[] = [];
  /** Undefined only while host.connect() runs (a host may report an error from inside it). */
  #stream: ByteStream | undefined;
  readonly #decoder: MqttDecoder;
  #phase: Phase = "connecting";
  #connected: { readonly timings: ConnectTimings; readonly peer?: string } | undefined;
  /** QoS 1/2 publishes by packet identifier, in the order taken. */
  readonly #outbox = new Map<number, Outgoing>();
  #outboxBytes = 0;
  #inflight = 0;
  /** SUBSCRIBE / UNSUBSCRIBE packet identifiers in use, and who asked. */
  readonly #requests = new Map<number, { readonly member: Member | undefined; readonly at: number }>();
  /** QoS 2 publishes received and delivered, waiting for their PUBREL. */
  #received: Set<number> | undefined;
  #nextId = 1;
  #born = false;
  readonly #keepAliveMs: number;
  /** The outbox's cap: the first stream's mqtt_outbox_bytes, else the binding's. */
  readonly #outboxCap: number;
  #lastTx = 0;
  #pingSentAt = -1;
  #connectSentAt = 0;
  #tick: unknown;
  #blocked = false;
  /** Packets waiting for #flush(): #gather[0, #outBytes). */
  readonly #gather = new Uint8Array(GATHER_BYTES);
  /** Inside a host callback (see #guard). */
  #inCallback = 0;
  #outBytes = 0;
  #pumping = false;
  #pumpAgain = false;
  /** Round-robin start among members asking to send. */
  #turn = 0;

  constructor(binding: MqttBinding, key: string, link: StreamLink, connect: ConnectOptions, held: Outgoing[]) {
    this.#binding = binding;
    this.key = key;
    this.#link0 = link;
    const ka = link.policy.number("mqtt_keep_alive");
    this.#keepAliveMs = (ka ?? DEFAULT_KEEP_ALIVE_S) * 1000;
    this.#outboxCap = link.policy.number("mqtt_outbox_bytes") ?? binding.outboxBytes;
    for (const o of held) {
      this.#outbox.set(o.packetId, o);
      this.#outboxBytes += o.payload.length;
      o.sent = false;
    }
    this.#decoder = new MqttDecoder(this);
    // The session is its own host handlers object (its on* methods below):
    // five closures would cost slots for as long as the connection lives.
    this.#stream = link.host.connect(connect, this);
    if (this.#phase === "closed") this.#stream.close();
  }

  // ---- host handlers: each guarded, as an exception out of one would end
  // the Node program or abort the XS machine (device) ----

  onConnected(info: { readonly timings: ConnectTimings; readonly peer?: string }): void {
    this.#guard(() => this.#onConnected(info));
  }

  onData(bytes: Uint8Array): void {
    this.#guard(() => this.#onData(bytes));
  }

  onWritable(): void {
    this.#guard(() => {
      this.#blocked = false;
      this.#pump();
    });
  }

  onClosed(): void {
    this.#guard(() => this.#end({ reason: "the broker closed the connection", error: "reset" }));
  }

  onError(e: HostError): void {
    this.#guard(() => this.#end({ reason: `${e.kind}: ${e.message}`, error: e.kind }));
  }

  // ---- the decoder's options (the session is that object too) ----

  get maxPacketBytes(): number { return this.#binding.maxPacketBytes; }

  onPacket(p: MqttPacket): void {
    this.#onPacket(p);
  }

  /** The largest PUBLISH payload, topic aside, within the packet limit (fixed header, topic length, packet id). */
  get maxPayload(): number { return this.#binding.maxPacketBytes - 9; }
  get host() { return this.#link0.host; }

  join(link: StreamLink): Connection {
    const m = new Member(this, link);
    if (m.failed) {
      if (!this.#members.length) this.#close(undefined);
      return m;
    }
    this.#members.push(m);
    if (this.#phase === "up") {
      m.start();
      this.#flush();
    }
    return m;
  }

  // ---- members ----

  /** A member left (its stream disconnected or went away): UNSUBSCRIBE, and DISCONNECT after the last. */
  leave(m: Member): void {
    const i = this.#members.indexOf(m);
    if (i < 0) return;
    this.#members.splice(i, 1);
    if (this.#phase !== "up") {
      if (!this.#members.length) this.#close(undefined);
      return;
    }
    if (m.filter && m.subscribed && !this.#members.some((o) => o.filter === m.filter)) {
      this.#send({ type: Packet.UNSUBSCRIBE, packetId: this.#request(undefined), filters: [m.filter] });
    }
    if (!this.#members.length) {
      this.#send({ type: Packet.DISCONNECT });
      this.#close(undefined);
    }
    this.#flush();
  }

  subscribe(m: Member, filter: string, qos: QoS): void {
    this.#send({ type: Packet.SUBSCRIBE, packetId: this.#request(m), subscriptions: [{ filter, qos }] });
  }

  /** The connection's birth message goes once, from the first member to be subscribed; true if it was sent. */
  birth(m: Member): boolean {
    if (this.#born) return false;
    const p = m.link.policy;
    const topic = p.string("mqtt_birth_topic");
    if (!topic) return false;
    this.#born = true;
    const qos = (p.number("mqtt_birth_qos") ?? 0) as QoS;
    const message = utf8Encode(m.link.expand(p.string("mqtt_birth_message") ?? ""));
    const expanded = m.link.expand(topic);
    const why = topicNameFault(expanded);
    if (why) {
      this.host.log(`${m.link.streamtype}: no birth message: its topic "${expanded}" ${why}`);
      return false;
    }
    const t = utf8Encode(expanded);
    if (qos === 0) {
      this.#publish(t, message, 0, p.flag("mqtt_birth_retain"), false, 0);
      return false;
    }
    this.#admit(m.link.streamtype, t, message, qos, p.flag("mqtt_birth_retain"), true);
    return true;
  }

  /** Someone has something to send. */
  pump(): void {
    this.#pump();
    // from an app handler run by one of our host callbacks: that callback flushes once at its end
    if (!this.#inCallback) this.#flush();
  }

  // ---- transport ----

  #onConnected(info: { readonly timings: ConnectTimings; readonly peer?: string }): void {
    if (this.#phase !== "connecting") return;
    this.#connected = info;
    this.#phase = "connack";
    const link = this.#link0;
    const p = link.policy;
    const blobs = link.host.blobs;
    const user = blobs.get(BLOB.mqttUsername);
    const password = blobs.get(BLOB.mqttPassword);
    const willTopic = p.string("mqtt_will_topic");
    let connect: MqttPacket;
    try {
      connect = {
        type: Packet.CONNECT,
        clientId: this.#binding.clientId(this.key, link),
        cleanSession: p.flag("mqtt_clean_start"),
        keepAlive: this.#keepAliveMs / 1000,
        username: user?.length ? utf8Decode(user, 0, user.length) ?? "" : undefined,
        password: password?.length ? password : undefined,
        will: willTopic ? {
          topic: link.expand(willTopic),
          payload: utf8Encode(link.expand(p.string("mqtt_will_message") ?? "")),
          qos: (p.number("mqtt_will_qos") ?? 0) as QoS,
          retain: p.flag("mqtt_will_retain"),
        } : undefined,
      };
      this.#send(connect);
    } catch (e) {
      if (!(e instanceof MqttError)) throw e;
      return this.#end({ reason: `CONNECT refused: ${e.message}`, local: true });
    }
    this.#connectSentAt = this.host.now();
    this.#tick = this.host.setTimer(TICK_MS, () => this.#guard(() => this.#onTick()));
  }

  #onData(bytes: Uint8Array): void {
    if (this.#phase === "closed") return;
    this.#pingSentAt = -1; // the broker is alive
    try {
      this.#decoder.push(bytes);
    } catch (e) {
      if (!(e instanceof MqttError)) throw e;
      this.#end({ reason: `the broker sent a bad packet: ${e.message}`, interrupted: this.#outbox.size > 0, replayable: true });
    }
  }

  #onPacket(p: MqttPacket): void {
    if (this.#phase === "closed") return;
    if (this.#phase === "connack" && p.type !== Packet.CONNACK) {
      return this.#protocolError(`${packetName(p.type)} before CONNACK`);
    }
    switch (p.type) {
      case Packet.CONNACK: return this.#onConnack(p.returnCode, p.sessionPresent);
      case Packet.PUBLISH: return this.#onPublish(p);
      case Packet.PUBACK: return this.#acked(p.packetId, 1);
      case Packet.PUBREC: {
        const o = this.#outbox.get(p.packetId);
        if (o && o.qos === 2 && !o.released) {
          o.released = true;
          o.sentAt = this.host.now();
          this.#binding.persist(this.key, this.#link0, this.#outbox.values());
        }
        // a PUBREC for something unknown is answered all the same, so the broker can let go of it
        this.#send({ type: Packet.PUBREL, packetId: p.packetId });
        return;
      }
      case Packet.PUBCOMP: return this.#acked(p.packetId, 2);
      case Packet.PUBREL:
        this.#received?.delete(p.packetId);
        this.#send({ type: Packet.PUBCOMP, packetId: p.packetId });
        return;
      case Packet.SUBACK: {
        const m = this.#requests.get(p.packetId)?.member;
        this.#requests.delete(p.packetId);
        if (m) m.subacked(p.returnCodes[0]!);
        return;
      }
      case Packet.UNSUBACK:
        this.#requests.delete(p.packetId);
        return;
      case Packet.PINGRESP:
        return;
      default:
        // CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT: a client never gets these
        return this.#protocolError(`a ${packetName(p.type)} from the broker`);
    }
  }

  #protocolError(what: string): void {
    this.#end({ reason: `protocol error: ${what}`, interrupted: this.#outbox.size > 0, replayable: true });
  }

  #onConnack(code: number, sessionPresent: boolean): void {
    if (this.#phase !== "connack") return this.#protocolError("a second CONNACK");
    if (code !== ConnackCode.ACCEPTED) {
      const why = ["", "unacceptable protocol version", "client id rejected", "server unavailable",
        "bad user name or password", "not authorized"][code];
      const end: ConnectionEnd = code === ConnackCode.BAD_CREDENTIALS || code === ConnackCode.NOT_AUTHORIZED
        ? { reason: `the broker refused the connection: ${why}`, authFailed: true }
        : code === ConnackCode.UNAVAILABLE ? { reason: `the broker refused the connection: ${why}` }
          : { reason: `the broker refused the connection: ${why}`, local: true };
      return this.#end(end);
    }
    this.#phase = "up";
    // A kept session: the broker still has our unacknowledged publishes' ids
    // (MQTT-4.4.0-1), they go again with DUP. A new one: they go again afresh.
    for (const o of this.#outbox.values()) {
      if (!sessionPresent) {
        if (o.released) {
          // the broker took it (PUBREC) and its session is gone: nothing more will come
          this.#settle(o, true);
          continue;
        }
        o.resends = 0;
      }
    }
    for (const m of [...this.#members]) if (this.#phase === "up") m.start();
    if (this.#phase === "up") this.#pump(sessionPresent);
  }

  #onPublish(p: PublishPacket): void {
    if (p.qos === 2) {
      const id = p.packetId!;
      // delivered once: a DUP before PUBREL is the same message
      if (this.#phase === "up") this.#send({ type: Packet.PUBREC, packetId: id });
      if (!this.#received?.has(id)) {
        (this.#received ??= new Set()).add(id);
        this.#deliver(p);
      }
      return;
    }
    // acknowledged before the app sees it, so that what the app sends from
    // onRx goes after the PUBACK (the broker may hold its next delivery for it)
    if (p.qos === 1 && this.#phase === "up") this.#send({ type: Packet.PUBACK, packetId: p.packetId! });
    this.#deliver(p);
  }

  #deliver(p: PublishPacket): void {
    for (const m of [...this.#members]) {
      if (m.subscribed && m.filter && topicMatches(m.filter, p.topic)) m.link.rx(p.payload, RxFlag.SOM | RxFlag.EOM);
    }
  }

  #onTick(): void {
    this.#tick = undefined;
    if (this.#phase === "closed") return;
    const now = this.host.now();
    const link = this.#link0;
    if (this.#phase === "connack") {
      if (now - this.#connectSentAt >= link.responseTimeoutMs) {
        return this.#end({ reason: `no CONNACK within ${link.responseTimeoutMs} ms` });
      }
    } else if (this.#keepAliveMs > 0) {
      if (this.#pingSentAt >= 0 && now - this.#pingSentAt >= Math.max(this.#keepAliveMs, 2 * TICK_MS)) {
        return this.#end({ reason: `the broker is silent: no PINGRESP within the ${this.#keepAliveMs / 1000} s keep-alive`, interrupted: this.#outbox.size > 0, replayable: true });
      }
      if (this.#pingSentAt < 0 && now - this.#lastTx >= this.#keepAliveMs - TICK_MS) {
        this.#send({ type: Packet.PINGREQ });
        this.#pingSentAt = now;
      }
    }
    if (this.#phase === "up") {
      for (const r of this.#requests.values()) {
        if (now - r.at >= link.responseTimeoutMs) {
          return this.#end({ reason: `no SUBACK or UNSUBACK within ${link.responseTimeoutMs} ms`, interrupted: this.#outbox.size > 0, replayable: true });
        }
      }
      this.#resendOverdue(now);
    }
    if ((this.#phase as Phase) !== "closed") this.#tick = this.host.setTimer(TICK_MS, () => this.#guard(() => this.#onTick()));
  }

  /** Publishes not acknowledged within ackTimeoutMs go again with DUP, MAX_RESENDS times, then QOS_NACK_REMOTE. */
  #resendOverdue(now: number): void {
    const timeout = this.#binding.ackTimeoutMs ?? this.#link0.responseTimeoutMs;
    let settled = false;
    for (const o of [...this.#outbox.values()]) {
      if (!o.sent || now - o.sentAt < timeout) continue;
      if (o.resends >= MAX_RESENDS) {
        this.host.log(`mqtt: publish ${o.packetId} to "${text(o.topic)}" unacknowledged after ${MAX_RESENDS} resends`);
        this.#settle(o, false);
        settled = true;
        continue;
      }
      o.resends++;
      this.#transmit(o, true);
    }
    if (settled) this.#pump();
  }

  // ---- publishing ----

  /**
   * Sends what is waiting: unacknowledged publishes first (with DUP when
   * `dup`), then new messages from the members that asked, in turn, while
   * the window, the outbox and the host's buffer allow.
   */
  #pump(dup = false): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        if (this.#phase !== "up") return;
        for (const o of this.#outbox.values()) {
          if (this.#blocked || this.#inflight >= this.#binding.maxInflight) return;
          if (!o.sent) this.#transmit(o, dup || o.resends > 0 || o.released);
        }
        this.#pullFromMembers();
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  #pullFromMembers(): void {
    for (let spins = 0; spins < this.#members.length;) {
      if (this.#phase !== "up" || this.#blocked) return;
      if (this.#inflight >= this.#binding.maxInflight || this.#outboxBytes >= this.#outboxCap) return;
      const m = this.#members[this.#turn % this.#members.length]!;
      this.#turn = (this.#turn + 1) % this.#members.length;
      if (m.wantsToSend && m.pull()) spins = 0;
      else spins++;
    }
  }

  /** A whole message from a member's app. */
  message(m: Member, topic: Uint8Array, payload: Uint8Array, qos: QoS, retain: boolean): void {
    if (qos === 0) return this.#publish(topic, payload, 0, retain, false, 0);
    if (payload.length > this.#outboxCap) {
      this.host.log(`${m.link.streamtype}: a ${payload.length}-byte QoS ${qos} publish cannot fit the ${this.#outboxCap}-byte outbox: refused`);
      m.link.done(State.QOS_NACK_LOCAL);
      return;
    }
    // held until acknowledged: a copy, as the app may reuse its buffer
    this.#admit(m.link.streamtype, topic, payload.slice(), qos, retain, false);
  }

  #admit(owner: string, topic: Uint8Array, payload: Uint8Array, qos: QoS, retain: boolean, birth: boolean): void {
    const o: Outgoing = { owner, topic, payload, qos, retain, birth, packetId: this.#freeId(), released: false, sent: false, sentAt: 0, resends: 0 };
    this.#outbox.set(o.packetId, o);
    this.#outboxBytes += payload.length;
    this.#binding.persist(this.key, this.#link0, this.#outbox.values());
    if (this.#inflight < this.#binding.maxInflight && !this.#blocked) this.#transmit(o, false);
  }

  #transmit(o: Outgoing, dup: boolean): void {
    if (!o.sent) this.#inflight++;
    o.sent = true;
    o.sentAt = this.host.now();
    if (o.released) this.#send({ type: Packet.PUBREL, packetId: o.packetId });
    else this.#publish(o.topic, o.payload, o.qos, o.retain, dup, o.packetId);
  }

  /** A PUBLISH: gathered with the packets around it when small, else alone in one write (head and payload together). */
  #publish(topic: Uint8Array, payload: Uint8Array, qos: QoS, retain: boolean, dup: boolean, packetId: number): void {
    this.#lastTx = this.host.now();
    const total = publishHeadSize(topic.length, qos, payload.length) + payload.length;
    if (total <= GATHER_BYTES) {
      if (this.#outBytes + total > GATHER_BYTES) this.#flush();
      const at = writePublishHead(this.#gather, this.#outBytes, topic, qos, retain, dup, packetId, payload.length);
      this.#gather.set(payload, at);
      this.#outBytes = at + payload.length;
      return;
    }
    this.#flush();
    const out = new Uint8Array(total);
    out.set(payload, writePublishHead(out, 0, topic, qos, retain, dup, packetId, payload.length));
    this.#hostWrite(out);
  }

  #acked(packetId: number, qos: QoS): void {
    const o = this.#outbox.get(packetId);
    if (!o || o.qos !== qos || !o.sent) return; // late, or a duplicate: nothing waits for it
    this.#settle(o, true);
    this.#pump();
  }

  /** A publish is done with: acknowledged or given up on. Its stream is told. */
  #settle(o: Outgoing, ok: boolean): void {
    this.#outbox.delete(o.packetId);
    this.#outboxBytes -= o.payload.length;
    if (o.sent) this.#inflight--;
    this.#binding.persist(this.key, this.#link0, this.#outbox.values());
    const m = this.#members.find((x) => x.link.streamtype === o.owner);
    if (!m) {
      this.host.log(`mqtt: publish ${o.packetId} to "${text(o.topic)}" ${ok ? "acknowledged" : "failed"}; its stream is gone`);
      return;
    }
    if (o.birth) {
      if (ok) m.born();
      else m.fail({ reason: "the broker never acknowledged the birth message", interrupted: true, replayable: true });
      return;
    }
    m.link.done(ok ? State.QOS_ACK_REMOTE : State.QOS_NACK_REMOTE);
  }

  #freeId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id === 65535 ? 1 : id + 1;
      if (!this.#outbox.has(id) && !this.#requests.has(id)) return id;
    }
  }

  #request(m: Member | undefined): number {
    const id = this.#freeId();
    this.#requests.set(id, { member: m, at: this.host.now() });
    return id;
  }

  #send(p: MqttPacket): void {
    this.#write(encodePacket(p));
  }

  /** Gathers bytes for #flush(), which every entry point (host callback, app call) ends with. */
  #write(bytes: Uint8Array): void {
    this.#lastTx = this.host.now();
    if (bytes.length > GATHER_BYTES) {
      this.#flush();
      this.#hostWrite(bytes);
      return;
    }
    if (this.#outBytes + bytes.length > GATHER_BYTES) this.#flush();
    this.#gather.set(bytes, this.#outBytes);
    this.#outBytes += bytes.length;
  }

  #flush(): void {
    if (!this.#outBytes || this.#phase === "closed") return;
    // the host copies what it is given before write() returns: the buffer is ours again at once
    const n = this.#outBytes;
    this.#outBytes = 0;
    this.#hostWrite(this.#gather.subarray(0, n));
  }

  #hostWrite(bytes: Uint8Array): void {
    if (!this.#stream!.write(bytes)) this.#blocked = true;
  }

  // ---- ending ----

  /** The connection failed or broke: every member's stream is told, its unacknowledged publishes are kept. */
  #end(end: ConnectionEnd): void {
    if (this.#phase === "closed") return;
    const members = this.#members.splice(0);
    const interrupted = this.#outbox.size > 0 || end.interrupted === true;
    this.#close(end.reason);
    for (const m of members) m.ended(interrupted ? { ...end, interrupted: true, replayable: true } : end);
  }

  #close(reason: string | undefined): void {
    if (this.#phase === "closed") return;
    this.#flush(); // a DISCONNECT, an UNSUBSCRIBE
    this.#phase = "closed";
    if (this.#tick !== undefined) this.host.clearTimer(this.#tick);
    this.#tick = undefined;
    this.#stream?.close();
    const unacked = [...this.#outbox.values()];
    for (const o of unacked) o.sent = false;
    if (reason && unacked.length) this.host.log(`mqtt: ${unacked.length} unacknowledged publishes wait for the next connection`);
    this.#binding.ended(this, unacked);
  }

  /** Runs a host callback's work; an exception (a bug) ends the connection, never the runtime. */
  #guard(f: () => void): void {
    this.#inCallback++;
    try {
      f();
      this.#inCallback--;
      this.#flush();
    } catch (e) {
      this.#inCallback = 0;
      const members = this.#members.splice(0);
      this.#close("internal error");
      for (const m of members) m.link.fault(e);
    }
  }

  connectedInfo(): { readonly timings: ConnectTimings; readonly peer?: string } {
    return this.#connected ?? { timings: {} };
  }
}

// Member #bits: the policy's QoS in the low two bits, then these.
const RETAIN = 4;
const SUBSCRIBED = 8;
/** The subscription (if any) and the birth (if any) are done: CONNECTED was reported. */
const UP = 16;
/** Refused at creation (a bad topic or filter): never joined. */
const FAILED = 32;
/** Left the connection, or the connection ended: inert. */
const GONE = 64;

/**
 * One stream on a shared connection: its Connection towards the stream.
 * Kept small (flags in one number, the pieces of a message only while one is
 * being pulled): there is one per stream, and a device may run many.
 */
class Member implements Connection {
  readonly link: StreamLink;
  readonly #session: Session;
  /** The expanded mqtt_subscribe ("" for none). */
  readonly filter: string;
  /** The expanded mqtt_topic as UTF-8, or undefined: the stream only receives. */
  readonly #topic: Uint8Array | undefined;
  #bits: number;
  /** requestTx() calls not yet served. */
  #wanted: number;
  /** A message being pulled in pieces (no EOM yet). */
  #parts: Uint8Array[] | undefined;
  #partBytes = 0;

  constructor(session: Session, link: StreamLink) {
    this.#session = session;
    this.link = link;
    const p = link.policy;
    this.#bits = (p.number("mqtt_qos") ?? 0) | (p.flag("mqtt_retain") ? RETAIN : 0);
    this.#wanted = link.pending ? 1 : 0;
    const sub = p.string("mqtt_subscribe");
    const template = p.string("mqtt_topic");
    this.filter = sub ? link.expand(sub) : "";
    const topic = template ? link.expand(template) : "";
    const why = this.filter ? topicFilterFault(this.filter) : undefined;
    const topicWhy = topic ? topicNameFault(topic) : undefined;
    if (why || topicWhy) {
      this.#bits |= FAILED;
      link.ended({ reason: `mqtt: ${why ? `subscription "${this.filter}" ${why}` : `topic "${topic}" ${topicWhy}`}`, local: true });
    }
    this.#topic = topic ? utf8Encode(topic) : undefined;
  }

  get failed(): boolean { return (this.#bits & FAILED) !== 0; }
  get subscribed(): boolean { return (this.#bits & SUBSCRIBED) !== 0; }

  get wantsToSend(): boolean {
    return (this.#bits & (UP | GONE)) === UP && this.#wanted > 0 && this.#topic !== undefined;
  }

  /** The connection is up: subscribe, then birth, then CONNECTED. */
  start(): void {
    if (this.#bits & GONE) return;
    if (this.filter) this.#session.subscribe(this, this.filter, (this.#bits & 3) as QoS);
    else this.#subscribedOk();
  }

  subacked(code: number): void {
    if (this.#bits & GONE) return;
    if (code === SUBACK_FAILURE) {
      return this.fail({ reason: `the broker refused the subscription to "${this.filter}"`, authFailed: true });
    }
    this.#bits |= SUBSCRIBED;
    this.#subscribedOk();
  }

  #subscribedOk(): void {
    if (!this.#session.birth(this)) this.born();
  }

  /** Subscribed and the birth (if any) acknowledged: CONNECTED. */
  born(): void {
    if (this.#bits & (GONE | UP)) return;
    this.#bits |= UP;
    if (!this.link.connected(this.#session.connectedInfo())) return;
    if (this.#wanted > 0) this.#session.pump();
  }

  requestTx(): void {
    if (this.#bits & GONE) return;
    this.#wanted++;
    if (this.#bits & UP) this.#session.pump();
  }

  /** Pulls one message (or what the app has of it); true if something was taken. */
  pull(): boolean {
    const topic = this.#topic!;
    const max = this.#session.maxPayload - topic.length - this.#partBytes;
    const pulled = this.link.tx(Math.max(0, max), this.#parts ? 0 : RxFlag.SOM);
    if (pulled === "stop") {
      this.#wanted = 0;
      return false;
    }
    if (pulled === "none") {
      this.#wanted = Math.max(0, this.#wanted - 1);
      return false;
    }
    let payload = pulled.payload;
    if (this.#parts || !(pulled.flags & RxFlag.EOM)) {
      (this.#parts ??= []).push(payload);
      this.#partBytes += payload.length;
      if (!(pulled.flags & RxFlag.EOM)) return true;
      payload = joined(this.#parts, this.#partBytes);
      this.#parts = undefined;
      this.#partBytes = 0;
    }
    this.#wanted = Math.max(0, this.#wanted - 1);
    this.#session.message(this, topic, payload, (this.#bits & 3) as QoS, (this.#bits & RETAIN) !== 0);
    return true;
  }

  /** This stream cannot go on on this connection; the others can. */
  fail(end: ConnectionEnd): void {
    if (this.#bits & GONE) return;
    this.#bits |= GONE;
    this.#session.leave(this);
    this.link.ended(end);
  }

  /** The whole connection ended (the session already let go of us). */
  ended(end: ConnectionEnd): void {
    if (this.#bits & GONE) return;
    this.#bits |= GONE;
    this.link.ended(end);
  }

  close(): void {
    if (this.#bits & GONE) return;
    this.#bits |= GONE;
    this.#session.leave(this);
  }
}

function text(bytes: Uint8Array): string {
  return utf8Decode(bytes, 0, bytes.length) ?? "";
}

function joined(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
