/**
 * A small `--flag value` / `--flag=value` / `--bool` parser for the bench entry points.
 * Unknown flags are an error (a typo must not silently run the default benchmark).
 */

export interface FlagSpec {
  /** Takes no value (`--flag` alone means true). */
  bool?: boolean;
  /** One line for `--help`. */
  help: string;
  /** Default shown in `--help` (the caller applies defaults). */
  def?: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

export interface ParsedArgs {
  values: Map<string, string>;
  bools: Set<string>;
}

export function parseArgs(argv: readonly string[], specs: FlagSpecs): ParsedArgs {
  const values = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)} (flags start with --)`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = specs[name];
    if (spec === undefined) throw new Error(`unknown flag --${name} (see --help)`);
    if (spec.bool === true) {
      if (eq !== -1) throw new Error(`--${name} takes no value`);
      bools.add(name);
      continue;
    }
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new Error(`--${name} needs a value`);
      value = argv[++i];
    }
    values.set(name, value);
  }
  return { values, bools };
}

export function helpText(usage: string, specs: FlagSpecs): string {
  const lines = [usage, ''];
  for (const [name, spec] of Object.entries(specs)) {
    const left = spec.bool === true ? `--${name}` : `--${name} <v>`;
    const def = spec.def !== undefined ? ` (default ${spec.def})` : '';
    lines.push(`  ${left.padEnd(26)} ${spec.help}${def}`);
  }
  return lines.join('\n');
}

export function intFlag(args: ParsedArgs, name: string, def: number, min = 0): number {
  const raw = args.values.get(name);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export function numFlag(args: ParsedArgs, name: string, def: number, min = 0): number {
  const raw = args.values.get(name);
  if (raw === undefined) return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

export function listFlag(args: ParsedArgs, name: string, def: readonly string[]): string[] {
  const raw = args.values.get(name);
  if (raw === undefined) return [...def];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
