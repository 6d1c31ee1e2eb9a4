// Bundle entry: the Secure Streams runtime as a device app would load it, for
// the footprint benchmark and the leak test on XS (bench/xs.bench.ts,
// test-host/xs-leak.test.ts):
// bundleForXS(<dist>/test-host/support/xs-runtime-entry.js) sets globalThis.ssRuntime.
// PORTABLE: runs inside the XS engine. Only runtime modules here (the SS
// layer, the h1 binding and its wire codec, the policy reader, the XS bridge
// host), so that what this bundle retains is what the runtime costs; the
// measuring code is a bundle of its own (xs-footprint-harness.ts).
//
// A plain object on globalThis rather than the bundle's exports (bundleForXS's
// globalName): esbuild's exports object has a getter closure per export,
// ~12 XS slots each, that no device module has.

import { XSBridgeHost } from "../../hosts/xsnap/xs-host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { Policy } from "../../src/policy/reader.js";
import { createH1Binding } from "../../src/protocols/h1.js";
import { State, Ret, RxFlag } from "../../src/ss/states.js";

const runtime = { XSBridgeHost, SecureStreams, Policy, createH1Binding, State, Ret, RxFlag };

export type Runtime = typeof runtime;

(globalThis as unknown as { ssRuntime: Runtime }).ssRuntime = runtime;
