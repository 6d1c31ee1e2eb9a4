// Smoke tests for the XS test host (hosts/xsnap): bundling portable code,
// running it on the real XS engine (xsnap-worker), the message channel and
// the meter figures.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForXS, NodeOnlyCodeError } from '../hosts/xsnap/bundle.js';
import { runInXS, XSError, XSWorker } from '../hosts/xsnap/xs-worker.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Runs from dist/test-host/; bundle the compiled fixture next to this file.
const smokeEntry = path.join(here, 'fixtures', 'xs-smoke-entry.js');

test('portable fixture runs on XS and reports back', async () => {
  const bundle = await bundleForXS(smokeEntry);
  assert.doesNotMatch(bundle, /\bimport\b|\brequire\(/);
  const { messages, meter } = await runInXS(bundle);
  assert.equal(messages.length, 1);
  assert.deepEqual(JSON.parse(messages[0]!), {
    words: ['hello', 'wörld', ''],
    a: 2,
    privateBrand: true,
    instances: 1,
    u32: 0x04030201,
  });
  assert.ok(meter.compute > 0);
});

test('bundle exposes exports through globalName', async () => {
  const bundle = await bundleForXS(smokeEntry, { globalName: 'smoke' });
  const { messages } = await runInXS([bundle, `send(smoke.roundTrip(['x', 'yz']).join('|'))`]);
  assert.deepEqual(messages.slice(1), ['x|yz']);
});

test('bundle check rejects Node-only code', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'xs-bundle-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cases: [string, string, RegExp][] = [
    ['node-fs.js', `import { readFileSync } from 'node:fs';\nexport const f = () => readFileSync('x');\n`, /Node builtin 'node:fs'/],
    ['bare-path.js', `import { join } from 'path';\nexport const j = join('a', 'b');\n`, /Node builtin 'path'/],
    ['buffer.js', `export const b = Buffer.from('hi').length;\n`, /global 'Buffer' \(in .*buffer\.js\)/],
    ['process.js', `export const dbg = typeof process !== 'undefined' && process.env.DEBUG;\n`, /global 'process'/],
    ['global-this.js', `export const B = globalThis.Buffer;\n`, /global 'Buffer'/],
  ];
  for (const [name, src, why] of cases) {
    const file = path.join(dir, name);
    await writeFile(file, src);
    await assert.rejects(bundleForXS(file), (e: unknown) => e instanceof NodeOnlyCodeError && why.test(e.message), name);
  }
  // Locals and property names that merely share a name are fine.
  const ok = path.join(dir, 'ok.js');
  await writeFile(ok, `export function f(process) { const Buffer = 1; return { process, Buffer, x: ({}).require }; }\n`);
  await bundleForXS(ok);
  // console is fine by default (not Node-only) but can be forbidden too.
  const usesConsole = path.join(dir, 'console.js');
  await writeFile(usesConsole, `console.log(1);\n`);
  await bundleForXS(usesConsole);
  await assert.rejects(bundleForXS(usesConsole, { forbidGlobals: ['console'] }), /global 'console'/);
});

test('XS globals available in xsnap', async () => {
  const { messages } = await runInXS(`
    const names = ['TextEncoder', 'TextDecoder', 'print', 'gc', 'performance', 'issueCommand', 'harden',
      'setImmediate', 'console', 'setTimeout', 'queueMicrotask', 'Buffer', 'process'];
    send(JSON.stringify(Object.fromEntries(names.map((n) => [n, typeof globalThis[n]]))));
  `);
  const types = JSON.parse(messages[0]!) as Record<string, string>;
  for (const n of ['TextEncoder', 'TextDecoder', 'print', 'gc', 'issueCommand', 'harden', 'setImmediate']) assert.equal(types[n], 'function', n);
  assert.equal(types.performance, 'object');
  for (const n of ['console', 'setTimeout', 'queueMicrotask', 'Buffer', 'process']) assert.equal(types[n], 'undefined', n);
});

test('XSWorker: evaluate, issueCommand round trip, errors', async () => {
  const seen: string[] = [];
  const w = await XSWorker.create({
    onCommand: (bytes) => {
      const text = new TextDecoder().decode(bytes);
      seen.push(text);
      return new TextEncoder().encode(text.toUpperCase());
    },
  });
  try {
    const r = await w.evaluate(`
      const reply = issueCommand(new TextEncoder().encode('ping').buffer);
      new TextEncoder().encode(new TextDecoder().decode(reply) + '!').buffer;
    `);
    assert.deepEqual(seen, ['ping']);
    assert.equal(new TextDecoder().decode(r.reply), 'PING!');
    // Promise jobs settle before the crank replies. (Top-level `var`s of a
    // non-strict script persist as globals; `let`s do not.)
    const p = await w.evaluate(`var v; Promise.resolve(7).then((x) => { v = x; }); 0`);
    assert.equal(p.reply.length, 0);
    assert.equal(new TextDecoder().decode((await w.evaluate(`new TextEncoder().encode(String(v)).buffer`)).reply), '7');
    await assert.rejects(w.evaluate(`throw new RangeError('boom')`), (e: unknown) => e instanceof XSError && /RangeError: boom/.test(e.message));
    // The worker survives an uncaught exception.
    assert.equal((await w.evaluate('1')).reply.length, 0);
  } finally {
    await w.close();
  }
});

test('meter limit: runaway code kills the worker with a clear error', async () => {
  const w = await XSWorker.create({ meteringLimit: 1e6 });
  try {
    await assert.rejects(w.evaluate('for (;;) {}'), /too much computation/);
  } finally {
    await w.close();
  }
});

test('meter figures: compute and heap slots in use', async () => {
  const { steps, marks } = await runInXS([
    `globalThis.keep = [];`,
    `for (let i = 0; i < 1000; i++) keep.push({ i, s: 'x' + i });`,
    `mark('a'); const t = []; for (let i = 0; i < 100; i++) t.push(i); mark('b');`,
    `keep = null;`,
  ]);
  for (const s of steps) {
    for (const k of ['compute', 'currentHeapCount', 'allocate', 'liveSlots', 'heapBytes'] as const) {
      assert.equal(typeof s[k], 'number', k);
      assert.ok(Number.isInteger(s[k]) && s[k] >= 0, k);
    }
  }
  const [base, filled, , dropped] = steps as [typeof steps[0], typeof steps[0], typeof steps[0], typeof steps[0]];
  // 1000 kept objects with 2 properties each: at least 3 slots apiece.
  assert.ok(filled.liveSlots - base.liveSlots >= 3000, `slots ${base.liveSlots} -> ${filled.liveSlots}`);
  assert.ok(filled.heapBytes > base.heapBytes);
  assert.ok(filled.compute > base.compute * 10, `compute ${base.compute} vs ${filled.compute}`);
  assert.ok(dropped.liveSlots < filled.liveSlots - 2500, 'slots are reclaimed once unreachable');
  // mark() brackets work inside one step: the loop costs compute, the marks themselves ~nothing.
  assert.deepEqual(marks.map((m) => [m.label, m.step]), [['a', 2], ['b', 2]]);
  assert.ok(marks[1]!.compute - marks[0]!.compute > 100);
});

test('worker start-up is fast', async () => {
  const t0 = performance.now();
  const w = await XSWorker.create();
  const started = performance.now() - t0;
  await w.close();
  assert.ok(started < 2000, `started in ${started} ms`);
});
