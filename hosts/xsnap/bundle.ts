// Bundle portable code into one classic script that xsnap's XS can evaluate,
// refusing anything Node-only.

import { isBuiltin } from 'node:module';
import * as esbuild from 'esbuild';

export interface BundleOptions {
  /** Expose the entry's exports as `globalThis[globalName]`. */
  globalName?: string;
  /** Minify the output (default false: readable stack traces / errors). */
  minify?: boolean;
  /** More free globals to reject, e.g. ['console', 'setTimeout'] (xsnap's XS
   *  lacks both; a Moddable device host may provide them). */
  forbidGlobals?: string[];
}

/** Free globals that exist in Node but not in XS. A reference to any of them
 *  (even `typeof process`) means Node-only code reached the bundle. */
const NODE_GLOBALS = ['Buffer', 'process', 'require', '__dirname', '__filename'];
const MARK = '__XS_FORBIDDEN_GLOBAL_';

export class NodeOnlyCodeError extends Error {
  override name = 'NodeOnlyCodeError';
}

/**
 * Bundle `entryFile` (a .ts source or a compiled .js in dist/ — esbuild reads
 * both; .ts imports written with `.js` suffixes resolve to the .ts files) into
 * a self-contained IIFE script, target ES2022, with no imports left.
 *
 * Rejects (NodeOnlyCodeError) a bundle that would import a Node builtin
 * (`node:*`, `fs`, `net`, `path`, ...) or reference Node-only globals:
 * Buffer, process, require, __dirname, __filename (+ opts.forbidGlobals).
 * Globals xsnap's XS has are listed in xs-worker.ts.
 */
export async function bundleForXS(entryFile: string, opts: BundleOptions = {}): Promise<string> {
  const builtins = new Set<string>();
  // Each forbidden free identifier (and globalThis.X) is rewritten to a marker
  // identifier; esbuild's define only touches unbound references, so locals,
  // parameters and property names such as `obj.process` are not flagged.
  const define: Record<string, string> = {};
  for (const g of [...NODE_GLOBALS, ...(opts.forbidGlobals ?? [])]) {
    define[g] = MARK + g;
    define[`globalThis.${g}`] = MARK + g;
  }
  const result = await esbuild.build({
    entryPoints: [entryFile],
    bundle: true,
    write: false,
    format: 'iife',
    target: 'es2022',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    // The bundle starts with "use strict" (ESM input), which makes the eval's
    // top-level `var` local to it, so publish the exports explicitly.
    ...(opts.globalName
      ? { globalName: '__xsEntryExports', footer: { js: `globalThis[${JSON.stringify(opts.globalName)}] = __xsEntryExports;` } }
      : {}),
    minify: opts.minify ?? false,
    legalComments: 'none',
    charset: 'utf8',
    define,
    logLevel: 'silent',
    plugins: [
      {
        name: 'no-node-builtins',
        setup(build) {
          build.onResolve({ filter: /.*/ }, (args) => {
            if (args.kind === 'entry-point' || !isBuiltin(args.path)) return undefined;
            builtins.add(`'${args.path}' (imported by ${args.importer})`);
            return { path: args.path, external: true }; // reported below
          });
        },
      },
    ],
  }).catch((e: unknown) => {
    const errors = (e as { errors?: esbuild.Message[] }).errors;
    if (!errors) throw e;
    const text = errors.map((m) => `${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`).join('\n');
    throw new Error(`bundleForXS(${entryFile}) failed:\n${text}`);
  });

  const code = result.outputFiles[0]!.text;
  const problems = [...builtins].map((b) => `imports Node builtin ${b}`);
  for (const m of code.matchAll(new RegExp(`${MARK}(\\w+)`, 'g'))) {
    problems.push(`references Node-only global '${m[1]}' (in ${moduleAt(code, m.index!)})`);
  }
  if (problems.length) {
    throw new NodeOnlyCodeError(`bundle of ${entryFile} is not portable to XS:\n  ${[...new Set(problems)].join('\n  ')}`);
  }
  return code;
}

/** Source file of the code at `offset`: esbuild precedes each module with a `// path` comment. */
function moduleAt(code: string, offset: number): string {
  const before = code.slice(0, offset);
  const m = [...before.matchAll(/^\s*\/\/ (\S+\.[cm]?[jt]sx?)$/gm)].pop();
  return m ? m[1]! : 'unknown module';
}
