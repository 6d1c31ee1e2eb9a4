// lws_cmdline_option() for the examples: `-c 10`, `-d15`, `--timeout_ms 2000`, `-f`.

/**
 * The value of a command line switch: the argument after it ("" when the
 * switch is last or followed by another switch), or what follows a short
 * switch in the same argument ("-d15"). undefined when the switch is absent.
 */
export function cmdlineOption(argv: readonly string[], sw: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === sw) {
      const next = argv[i + 1];
      return next !== undefined && !next.startsWith("-") ? next : "";
    }
    if (sw.length === 2 && !sw.startsWith("--") && arg.startsWith(sw) && !arg.startsWith("--")) return arg.slice(2);
  }
  return undefined;
}
