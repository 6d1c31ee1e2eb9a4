// A simulator process for the crash tests (test-host/policy-crash.test.ts).
// argv[2] is JSON: { dir, builtIn (base64 policy), mode, crashAt? }.
//   "update": boots with fetch_policy, the store writing in 128-byte blocks;
//             with crashAt, SIGKILLs itself right after that write step.
//             Prints {"outcome", "steps"} when the update is over.
//   "boot":   prints the policy it would boot on: {"release", "slot"}.

import { Policy } from "../../src/policy/reader.js";
import { base64Decode } from "../../src/util/base64.js";
import { bootPolicy } from "../../src/system/policy-store.js";
import { FilePolicyStore } from "../../hosts/node/policy-store.js";
import { testDevice } from "./policy-update-rig.js";

const args = JSON.parse(process.argv[2]!) as { dir: string; builtIn: string; mode: "update" | "boot"; crashAt?: number };
const builtIn = base64Decode(args.builtIn)!;
let steps = 0;
const store = new FilePolicyStore(args.dir, {
  blockBytes: 128,
  onWriteStep: (step) => {
    steps = step;
    if (step === args.crashAt) process.kill(process.pid, "SIGKILL");
  },
});

if (args.mode === "boot") {
  const booted = bootPolicy(store, Policy.open(builtIn), (line) => process.stderr.write(`${line}\n`));
  booted.policy.verify();
  process.stdout.write(`${JSON.stringify({ release: booted.policy.release, slot: booted.slot ?? null })}\n`);
} else {
  const device = testDevice(builtIn, store);
  device.system.boot();
  const report = await device.nextReport();
  process.stdout.write(`${JSON.stringify({ outcome: report.outcome, steps })}\n`);
  process.exit(0);
}
