// The HTTP/1.1 wire codec (src/wire/http1): the byte fixtures on Node and on
// the real XS engine (same results required), then the codec against real
// peers: Node's own http server and raw net servers, over 127.0.0.1.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForXS } from '../hosts/xsnap/bundle.js';
import { runInXS } from '../hosts/xsnap/xs-worker.js';
import { runHttp1Cases } from './support/http1-cases.js';
import { Http1Error, Http1ResponseParser, encodeRequestHead, type Http1Head, type Http1Request } from '../src/wire/http1/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

test('fixtures: every case passes on Node', () => {
  const results = runHttp1Cases();
  const failed = results.filter((r) => !r.ok);
  assert.deepEqual(failed, [], failed.map((r) => `${r.name}: ${r.detail}`).join('\n'));
  assert.ok(results.length >= 300, `only ${results.length} cases`);
});

test('fixtures: XS gives the same results as Node', async () => {
  // Runs from dist/test-host/: bundle the compiled portable module.
  const bundle = await bundleForXS(path.join(here, 'support', 'http1-cases.js'), { globalName: 'lib', forbidGlobals: ['console'] });
  const { messages } = await runInXS([bundle, 'send(JSON.stringify(lib.runHttp1Cases()))']);
  assert.deepEqual(JSON.parse(messages[0]!), runHttp1Cases());
});

// ---- real peers ----

interface Reply {
  head: Http1Head;
  body: Buffer;
}

/**
 * A raw TCP client that speaks through the codec only: heads from
 * encodeRequestHead, everything received through one parser. It also checks
 * that the parser holds nothing back: body bytes are views of the input
 * being pushed, at most as many as that push took.
 */
class Client {
  readonly socket: net.Socket;
  readonly parser: Http1ResponseParser;
  /** Everything received, for looking at what the parser skipped. */
  readonly raw: Buffer[] = [];
  violations: string[] = [];
  pushes = 0;
  #input: Uint8Array = new Uint8Array(0);
  #delivered = 0;
  #head: Http1Head | undefined;
  #body: Buffer[] = [];
  #onBody: ((bytes: Uint8Array) => void) | undefined;
  #waiting: { resolve: (r: Reply) => void; reject: (e: unknown) => void } | undefined;
  #error: unknown;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.parser = new Http1ResponseParser({
      onHead: (head) => {
        this.#head = head;
      },
      onBody: (bytes) => {
        const input = this.#input;
        if (bytes.buffer !== input.buffer || bytes.byteOffset < input.byteOffset || bytes.byteOffset + bytes.length > input.byteOffset + input.length) {
          this.violations.push('body bytes not a view of the pushed input');
        }
        this.#delivered += bytes.length;
        if (this.#onBody) this.#onBody(bytes);
        else this.#body.push(Buffer.from(bytes));
      },
      onEnd: () => {
        const waiting = this.#waiting;
        this.#waiting = undefined;
        waiting?.resolve({ head: this.#head!, body: Buffer.concat(this.#body) });
      },
    });
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('end', () => this.#settle(() => this.parser.finish()));
    socket.on('error', (e) => this.#fail(e));
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(new Client(socket)));
      socket.once('error', reject);
    });
  }

  /** Sends a request and resolves with its response (rejects with the parser's error). */
  request(request: Http1Request, opts: { body?: Uint8Array; onBody?: (bytes: Uint8Array) => void } = {}): Promise<Reply> {
    if (this.#error) return Promise.reject(this.#error);
    this.#head = undefined;
    this.#body = [];
    this.#onBody = opts.onBody;
    if (request.method === 'HEAD') this.parser.expectNoBody();
    const reply = new Promise<Reply>((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
    this.socket.write(encodeRequestHead(request));
    if (opts.body) this.socket.write(opts.body);
    return reply;
  }

  close(): void {
    this.socket.destroy();
  }

  #receive(chunk: Buffer): void {
    this.raw.push(chunk);
    for (let at = 0; at < chunk.length && !this.#error;) {
      this.#input = chunk.subarray(at);
      this.#delivered = 0;
      this.pushes++;
      let n = 0;
      this.#settle(() => {
        n = this.parser.push(this.#input);
      });
      if (this.#delivered > n) this.violations.push(`push took ${n} bytes, delivered ${this.#delivered}`);
      at += n;
    }
  }

  #settle(step: () => void): void {
    try {
      step();
    } catch (e) {
      this.#fail(e);
    }
  }

  #fail(e: unknown): void {
    this.#error ??= e;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(e);
    this.socket.destroy();
  }
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Deterministic bytes and write sizes for the big body. */
function pseudoRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a;
  };
}

const BIG = 10 * 1024 * 1024;
let httpPort = 0;
let bigDigest = '';
const requestPorts: Record<string, number[]> = {};
const seenHeaders: Record<string, http.IncomingHttpHeaders> = {};
const servers: net.Server[] = [];

before(async () => {
  const server = http.createServer(async (req, res) => {
    const url = req.url ?? '';
    (requestPorts[url] ??= []).push(req.socket.remotePort!);
    seenHeaders[url] = req.headers;
    if (url === '/cl') {
      res.setHeader('Content-Length', 11);
      res.end('hello world');
    } else if (url === '/chunked') {
      for (const piece of ['a', 'bb', 'ccc', 'dddd']) {
        res.write(piece);
        await pause(5);
      }
      res.end();
    } else if (url === '/big') {
      const hash = createHash('sha256');
      const next = pseudoRandom(42);
      for (let sent = 0; sent < BIG;) {
        const piece = Buffer.alloc(Math.min(BIG - sent, 1 + (next() % 65536)));
        for (let i = 0; i < piece.length; i++) piece[i] = next() >>> 24;
        hash.update(piece);
        sent += piece.length;
        if (!res.write(piece)) await new Promise((r) => res.once('drain', r));
      }
      bigDigest = hash.digest('hex');
      res.end();
    } else if (url === '/echo') {
      const parts: Buffer[] = [];
      for await (const part of req) parts.push(part as Buffer);
      res.setHeader('Content-Length', Buffer.concat(parts).length);
      res.end(Buffer.concat(parts));
    } else if (url === '/nothing') {
      res.writeHead(204).end();
    } else if (url === '/resource') {
      res.setHeader('Content-Length', 5);
      res.end('hello'); // Node sends no body bytes for HEAD
    } else {
      res.writeHead(404).end();
    }
  });
  servers.push(server);
  httpPort = await listen(server);
});

after(() => {
  for (const s of servers) {
    if (s instanceof http.Server) s.closeAllConnections();
    s.close();
  }
});

/** A raw server: waits for a request head, then runs `respond`. */
async function rawServer(respond: (socket: net.Socket) => Promise<void> | void): Promise<number> {
  const server = net.createServer((socket) => {
    let seen = '';
    socket.on('data', (b) => {
      seen += b.toString('latin1');
      if (seen.includes('\r\n\r\n')) {
        seen = '';
        void respond(socket);
      }
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  return listen(server);
}

const get = (p: string, headers: [string, string][] = []): Http1Request => ({ method: 'GET', path: p, host: `127.0.0.1:${httpPort}`, headers });

test('peer: Content-Length body, our headers arrive as sent', async () => {
  const c = await Client.connect(httpPort);
  try {
    const r = await c.request(get('/cl', [['X-Trace', 'abc 123'], ['Accept', '*/*']]));
    assert.equal(r.head.status, 200);
    assert.equal(r.head.reason, 'OK');
    assert.equal(r.head.contentLength, 11);
    assert.equal(r.head.chunked, false);
    assert.equal(r.head.keepAlive, true);
    assert.equal(r.body.toString(), 'hello world');
    assert.equal(seenHeaders['/cl']!['x-trace'], 'abc 123');
    assert.equal(seenHeaders['/cl']!.host, `127.0.0.1:${httpPort}`);
    assert.deepEqual(c.violations, []);
  } finally {
    c.close();
  }
});

test('peer: chunked body written in pieces', async () => {
  const c = await Client.connect(httpPort);
  try {
    const r = await c.request(get('/chunked'));
    assert.equal(r.head.chunked, true);
    assert.equal(r.head.contentLength, undefined);
    assert.equal(r.body.toString(), 'abbcccdddd');
    assert.ok(c.pushes >= 2, `${c.pushes} pushes: the pieces should arrive apart`);
    assert.deepEqual(c.violations, []);
  } finally {
    c.close();
  }
});

test('peer: 10 MB chunked body streams through, hash matches, nothing held', async () => {
  const c = await Client.connect(httpPort);
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    const r = await c.request(get('/big'), {
      onBody: (b) => {
        hash.update(b);
        bytes += b.length;
      },
    });
    assert.equal(r.head.chunked, true);
    assert.equal(bytes, BIG);
    assert.equal(hash.digest('hex'), bigDigest);
    assert.deepEqual(c.violations, []);
    assert.ok(c.pushes > 10, `${c.pushes} pushes`);
  } finally {
    c.close();
  }
});

test('peer: keep-alive, two requests on one socket', async () => {
  const c = await Client.connect(httpPort);
  try {
    const first = await c.request(get('/cl'));
    const second = await c.request(get('/chunked'));
    assert.equal(first.head.keepAlive, true);
    assert.equal(second.head.keepAlive, true);
    assert.equal(first.body.toString(), 'hello world');
    assert.equal(second.body.toString(), 'abbcccdddd');
    const port = c.socket.localPort!;
    assert.ok(requestPorts['/cl']!.includes(port) && requestPorts['/chunked']!.includes(port), 'both requests came from one socket');
  } finally {
    c.close();
  }
});

test('peer: HEAD has no body, the next response is framed right', async () => {
  const c = await Client.connect(httpPort);
  try {
    const head = await c.request({ ...get('/resource'), method: 'HEAD' });
    assert.equal(head.head.status, 200);
    assert.equal(head.head.contentLength, 5);
    assert.equal(head.body.length, 0);
    const next = await c.request(get('/cl'));
    assert.equal(next.body.toString(), 'hello world');
  } finally {
    c.close();
  }
});

test('peer: 204, then another request on the same socket', async () => {
  const c = await Client.connect(httpPort);
  try {
    const none = await c.request(get('/nothing'));
    assert.equal(none.head.status, 204);
    assert.equal(none.body.length, 0);
    assert.equal(none.head.keepAlive, true);
    const next = await c.request(get('/cl'));
    assert.equal(next.body.toString(), 'hello world');
  } finally {
    c.close();
  }
});

test('peer: 100 Continue is skipped, the final response delivered', async () => {
  const c = await Client.connect(httpPort);
  try {
    const body = new TextEncoder().encode('hello');
    const r = await c.request({ ...get('/echo', [['Expect', '100-continue']]), method: 'POST', contentLength: body.length }, { body });
    assert.match(Buffer.concat(c.raw).toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    assert.equal(r.head.status, 200);
    assert.equal(r.body.toString(), 'hello');
  } finally {
    c.close();
  }
});

test('peer: Connection: close, body until the connection closes', async () => {
  const port = await rawServer(async (socket) => {
    socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nfirst ');
    await pause(5);
    socket.write('second ');
    await pause(5);
    socket.end('last');
  });
  const c = await Client.connect(port);
  try {
    const r = await c.request({ method: 'GET', path: '/', host: 'x', headers: [] });
    assert.equal(r.head.keepAlive, false);
    assert.equal(r.head.contentLength, undefined);
    assert.equal(r.body.toString(), 'first second last');
    assert.deepEqual(c.violations, []);
  } finally {
    c.close();
  }
});

test('peer: malformed responses give the precise Http1Error', async () => {
  const cases: [string, string, string][] = [
    ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello', 'bad-length', 'conflicting Content-Length values 5 and 6'],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello, world\r\n0\r\n\r\n', 'bad-chunk', "chunk data not followed by CRLF (',' after 5 bytes)"],
    ['HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n', 'bad-header', 'folded header line'],
    ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort', 'unexpected-eof', 'connection closed with 5 body bytes still to come'],
    ['SSH-2.0-OpenSSH_9.6\r\n', 'bad-status-line', 'not an HTTP/1.x status line'],
  ];
  for (const [response, code, message] of cases) {
    const port = await rawServer((socket) => {
      socket.end(response);
    });
    const c = await Client.connect(port);
    try {
      await assert.rejects(c.request({ method: 'GET', path: '/', host: 'x', headers: [] }), (e: unknown) => {
        assert.ok(e instanceof Http1Error, String(e));
        assert.equal(e.code, code);
        assert.ok(e.message.includes(message), e.message);
        return true;
      });
    } finally {
      c.close();
    }
  }
});
