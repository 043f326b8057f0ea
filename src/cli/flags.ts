/**
 * A small pflag/cobra-style parser: flags anywhere among the arguments, `--name=value`,
 * `--name value`, `-w json`, `-wjson`, boolean flags with an optional `=true|false`,
 * and `--` ending the flags. Errors use pflag's wording.
 */
import { parseGoDuration } from './gofmt';

export type FlagKind = 'bool' | 'string' | 'int' | 'duration' | 'strings';

export interface FlagSpec {
  name: string;
  short?: string;
  kind: FlagKind;
  default: string;
  usage: string;
}

export type FlagValue = string | boolean | number | string[];

export class FlagSet {
  readonly values = new Map<string, FlagValue>();
  readonly changed = new Set<string>();
  constructor(readonly specs: FlagSpec[]) {
    for (const s of specs) this.values.set(s.name, FlagSet.convert(s, s.default) as FlagValue);
  }

  static convert(s: FlagSpec, raw: string): FlagValue | string {
    switch (s.kind) {
      case 'bool':
        if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(raw)) return true;
        if (['0', 'f', 'F', 'false', 'FALSE', 'False', ''].includes(raw)) return raw === '' ? false : false;
        return `invalid argument "${raw}" for "--${s.name}" flag: strconv.ParseBool: parsing "${raw}": invalid syntax`;
      case 'int': {
        if (!/^[+-]?\d+$/.test(raw)) return `invalid argument "${raw}" for "--${s.name}" flag: strconv.ParseInt: parsing "${raw}": invalid syntax`;
        return Number(raw);
      }
      case 'duration': {
        const d = parseGoDuration(raw);
        if (d === null) return `invalid argument "${raw}" for "--${s.name}" flag: time: invalid duration ${raw}`;
        return d;
      }
      case 'strings':
        return raw === '' ? [] : raw.split(',');
      default:
        return raw;
    }
  }

  /** Set from a string; returns an error text on failure. */
  set(name: string, raw: string): string | null {
    const s = this.specs.find((x) => x.name === name);
    if (!s) return `unknown flag: --${name}`;
    const v = FlagSet.convert(s, raw);
    if (typeof v === 'string' && s.kind !== 'string') return v;
    this.values.set(name, v);
    this.changed.add(name);
    return null;
  }

  bool(n: string): boolean {
    return this.values.get(n) === true;
  }
  str(n: string): string {
    const v = this.values.get(n);
    return typeof v === 'string' ? v : '';
  }
  num(n: string): number {
    const v = this.values.get(n);
    return typeof v === 'number' ? v : 0;
  }
  list(n: string): string[] {
    const v = this.values.get(n);
    return Array.isArray(v) ? v : [];
  }
}

export interface ParseResult {
  args: string[];
  /** Arguments after `--`. */
  dashArgs: string[] | null;
  error: string | null;
}

/** Parse argv against several flag sets (the command's own, then the global ones). */
export function parseFlags(argv: string[], sets: FlagSet[]): ParseResult {
  const args: string[] = [];
  const find = (name: string, short: boolean): { set: FlagSet; spec: FlagSpec } | null => {
    for (const set of sets) {
      const spec = set.specs.find((s) => (short ? s.short === name : s.name === name));
      if (spec) return { set, spec };
    }
    return null;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') return { args, dashArgs: argv.slice(i + 1), error: null };
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const f = find(name, false);
      if (!f) return { args, dashArgs: null, error: `unknown flag: --${name}` };
      let raw: string;
      if (eq >= 0) raw = a.slice(eq + 1);
      else if (f.spec.kind === 'bool') raw = 'true';
      else if (i + 1 < argv.length) raw = argv[++i];
      else return { args, dashArgs: null, error: `flag needs an argument: --${name}` };
      const e = f.set.set(f.spec.name, raw);
      if (e) return { args, dashArgs: null, error: e };
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      let j = 1;
      while (j < a.length) {
        const c = a[j];
        const f = find(c, true);
        if (!f) return { args, dashArgs: null, error: `unknown shorthand flag: '${c}' in ${a}` };
        if (f.spec.kind === 'bool') {
          if (a[j + 1] === '=') {
            const e = f.set.set(f.spec.name, a.slice(j + 2));
            if (e) return { args, dashArgs: null, error: e };
            break;
          }
          f.set.set(f.spec.name, 'true');
          j++;
          continue;
        }
        let raw: string;
        if (j + 1 < a.length) raw = a.slice(a[j + 1] === '=' ? j + 2 : j + 1);
        else if (i + 1 < argv.length) raw = argv[++i];
        else return { args, dashArgs: null, error: `flag needs an argument: '${c}' in -${c}` };
        const e = f.set.set(f.spec.name, raw);
        if (e) return { args, dashArgs: null, error: e };
        break;
      }
      continue;
    }
    args.push(a);
  }
  return { args, dashArgs: null, error: null };
}

/** etcdctl's global flags. */
export const GLOBAL_FLAGS: FlagSpec[] = [
  { name: 'cacert', kind: 'string', default: '', usage: 'verify certificates of TLS-enabled secure servers using this CA bundle' },
  { name: 'cert', kind: 'string', default: '', usage: 'identify secure client using this TLS certificate file' },
  { name: 'command-timeout', kind: 'duration', default: '5s', usage: 'timeout for short running command (excluding dial timeout)' },
  { name: 'debug', kind: 'bool', default: 'false', usage: 'enable client-side debug logging' },
  { name: 'dial-timeout', kind: 'duration', default: '2s', usage: 'dial timeout for client connections' },
  { name: 'discovery-srv', short: 'd', kind: 'string', default: '', usage: 'domain name to query for SRV records describing cluster endpoints' },
  { name: 'discovery-srv-name', kind: 'string', default: '', usage: 'service name to query when using DNS discovery' },
  { name: 'endpoints', kind: 'strings', default: '127.0.0.1:2379', usage: 'gRPC endpoints' },
  { name: 'hex', kind: 'bool', default: 'false', usage: 'print byte strings as hex encoded strings' },
  { name: 'insecure-discovery', kind: 'bool', default: 'true', usage: 'accept insecure SRV records describing cluster endpoints' },
  { name: 'insecure-skip-tls-verify', kind: 'bool', default: 'false', usage: 'skip server certificate verification (CAUTION: this option should be enabled only for testing purposes)' },
  { name: 'insecure-transport', kind: 'bool', default: 'true', usage: 'disable transport security for client connections' },
  { name: 'keepalive-time', kind: 'duration', default: '2s', usage: 'keepalive time for client connections' },
  { name: 'keepalive-timeout', kind: 'duration', default: '6s', usage: 'keepalive timeout for client connections' },
  { name: 'key', kind: 'string', default: '', usage: 'identify secure client using this TLS key file' },
  { name: 'password', kind: 'string', default: '', usage: 'password for authentication (if this option is used, --user option shouldn\'t include password)' },
  { name: 'user', kind: 'string', default: '', usage: 'username[:password] for authentication (prompt if password is not supplied)' },
  { name: 'write-out', short: 'w', kind: 'string', default: 'simple', usage: 'set the output format (fields, json, protobuf, simple, table)' },
];

/** pflag's usage line for one flag, as etcdctl's help template prints it. */
export function flagUsageLine(s: FlagSpec): string {
  const def = s.kind === 'strings' ? `[${s.default}]` : s.kind === 'string' ? `"${s.default}"` : s.default;
  const head = s.short ? `  -${s.short}, --${s.name}` : `      --${s.name}`;
  return `${head}${s.kind === 'bool' ? `[=${def}]` : `=${def}`}\t${s.usage}`;
}
