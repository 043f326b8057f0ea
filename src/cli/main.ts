/**
 * cairnctl: etcdctl v3's command line over cairn's client. `run(argv)` resolves with
 * the exit code (long-running commands such as watch resolve only when they end).
 */
import * as fs from 'node:fs';
import { Client, type Credentials, type TlsOptions } from '../client';
import { COMMANDS, ETCDCTL_COMMANDS, type Command, type Ctx } from './commands';
import { FlagSet, GLOBAL_FLAGS, parseFlags, type FlagSpec } from './flags';
import { commandHelp, rootHelp } from './help';
import { capnslogTime } from './gofmt';
import type { Format } from './printers';
import { CliExit, Exit, err, errorLabel, exitWithError, out, retryWarning } from './runtime';
import { StdinReader, askPassword } from './stdin';

const HELP_FLAG: FlagSpec = { name: 'help', short: 'h', kind: 'bool', default: 'false', usage: 'help for this command' };
const GLOBAL_VALUE_FLAGS = new Set(GLOBAL_FLAGS.filter((f) => f.kind !== 'bool').flatMap((f) => [`--${f.name}`, ...(f.short ? [`-${f.short}`] : [])]));

/** Flags etcdctl has that cairnctl does not implement (DNS SRV discovery needs a DNS server). */
const UNSUPPORTED = ['discovery-srv', 'discovery-srv-name'];

function levenshtein(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function usage(path: Command[]): string {
  return path.length === 0 ? rootHelp(COMMANDS) : commandHelp(path);
}

/** Split argv into the command path and the rest (cobra's stripFlags + Find). */
function findCommand(argv: string[]): { path: Command[]; rest: string[]; unknown: string | null } {
  const path: Command[] = [];
  const rest: string[] = [];
  let list: Command[] | undefined = COMMANDS;
  let unknown: string | null = null;
  let searching = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('-')) {
      rest.push(a);
      if (GLOBAL_VALUE_FLAGS.has(a) && !a.includes('=') && i + 1 < argv.length) rest.push(argv[++i]);
      continue;
    }
    if (searching && list !== undefined) {
      const c: Command | undefined = list.find((x) => x.name === a);
      if (c) {
        path.push(c);
        list = c.sub;
        continue;
      }
      if (path.length === 0) unknown = a;
      searching = false;
    }
    rest.push(a);
  }
  return { path, rest, unknown };
}

function applyEnv(globals: FlagSet): void {
  const used = new Set<string>();
  for (const f of GLOBAL_FLAGS) {
    const key = 'ETCDCTL_' + f.name.toUpperCase().replace(/-/g, '_');
    const v = process.env[key];
    if (v === undefined) continue;
    used.add(key);
    if (globals.changed.has(f.name)) {
      err(`${capnslogTime()} C | pkg/flags: conflicting environment variable ${JSON.stringify(key)} is shadowed by corresponding command-line flag (either unset environment variable or disable flag)\n`);
      throw new CliExit(Exit.Error);
    }
    const e = globals.set(f.name, v);
    if (e) exitWithError(Exit.Error, e);
    globals.changed.delete(f.name);
  }
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ETCDCTL_') && !used.has(k) && !['ETCDCTL_API', 'ETCDCTL_WATCH_KEY', 'ETCDCTL_WATCH_RANGE_END'].includes(k)) err(`${capnslogTime()} W | pkg/flags: unrecognized environment variable ${k}=${v ?? ''}\n`);
  }
}

/** etcdctl's secureCfgFromCmd / newClientCfg: TLS when a certificate flag is given or transport security is asked for. */
function tlsFromFlags(g: FlagSet): TlsOptions | undefined {
  for (const f of ['cert', 'key', 'cacert']) {
    if (g.changed.has(f) && g.str(f) === '') exitWithError(Exit.BadArgs, `empty string is passed to --${f} option`);
  }
  const files = { cert: g.str('cert'), key: g.str('key'), ca: g.str('cacert') };
  const anyFile = files.cert !== '' || files.key !== '' || files.ca !== '';
  if (!anyFile && g.bool('insecure-transport')) return undefined;
  const tls: TlsOptions = { insecureSkipVerify: g.bool('insecure-skip-tls-verify') };
  try {
    if (files.ca !== '') tls.ca = fs.readFileSync(files.ca);
    if (files.cert !== '') tls.cert = fs.readFileSync(files.cert);
    if (files.key !== '') tls.key = fs.readFileSync(files.key);
  } catch (e) {
    exitWithError(Exit.BadArgs, e instanceof Error ? e.message.replace(/^ENOENT: no such file or directory, open '(.*)'$/, 'open $1: no such file or directory') : String(e));
  }
  return tls;
}

/** etcdctl's authCfgFromCmd: --user name:password, or --user name with --password, or a prompt. */
async function credentialsFromFlags(g: FlagSet, stdin: StdinReader): Promise<Credentials | undefined> {
  const user = g.str('user');
  if (user === '') return undefined;
  const password = g.str('password');
  let creds: Credentials;
  if (password !== '') creds = { username: user, password };
  else {
    const i = user.indexOf(':');
    creds = i < 0 ? { username: user, password: await askPassword(stdin, 'Password: ') } : { username: user.slice(0, i), password: user.slice(i + 1) };
  }
  // etcd's clientv3 authenticates only with both a name and a password.
  return creds.username !== '' && creds.password !== '' ? creds : undefined;
}

export async function run(argv: string[]): Promise<number> {
  const clients: Client[] = [];
  try {
    const { path, rest, unknown } = findCommand(argv);
    if (unknown !== null) {
      const sugg = ETCDCTL_COMMANDS.filter((c) => levenshtein(unknown, c) <= 2 || c.startsWith(unknown));
      let msg = `unknown command ${JSON.stringify(unknown)} for "etcdctl"`;
      if (sugg.length > 0) msg += '\n\nDid you mean this?\n' + sugg.map((x) => `\t${x}\n`).join('');
      err(`${errorLabel()} ${msg}\nRun 'etcdctl --help' for usage.\n`);
      exitWithError(Exit.Error, msg);
    }
    const globals = new FlagSet(GLOBAL_FLAGS);
    const cmd = path.length > 0 ? path[path.length - 1] : null;
    const own = new FlagSet([...(cmd?.flags ?? []), ...path.slice(0, -1).flatMap((c) => c.persistentFlags ?? []), HELP_FLAG]);
    const p = parseFlags(rest, [own, globals]);
    if (p.error) {
      err(`${errorLabel()} ${p.error}\n`);
      out(usage(path));
      err('\n');
      exitWithError(Exit.Error, p.error);
    }
    if (cmd === null || own.bool('help') || cmd.run === undefined) {
      out(usage(path));
      return 0;
    }
    if (cmd.noClient) {
      // Offline commands (version, snapshot status / restore) use only the output format.
      const display = { format: globals.str('write-out') as Format, hex: globals.bool('hex'), valueOnly: false };
      await cmd.run({ display } as Ctx, p.args, own, p.dashArgs);
      return 0;
    }
    applyEnv(globals);
    for (const u of UNSUPPORTED) {
      if (globals.changed.has(u) || (process.env['ETCDCTL_' + u.toUpperCase().replace(/-/g, '_')] ?? '') !== '' || globals.bool(u)) {
        exitWithError(Exit.BadFeature, `--${u} is not supported by cairnctl (DNS SRV discovery is not implemented; give --endpoints)`);
      }
    }
    const w = globals.str('write-out');
    if (!['simple', 'json', 'fields', 'table', 'protobuf'].includes(w)) exitWithError(Exit.BadFeature, 'unsupported output format');
    if (w === 'protobuf') exitWithError(Exit.BadFeature, 'protobuf output format is not supported by cairnctl yet');
    const endpoints = globals.list('endpoints');
    const dialTimeoutMs = globals.num('dial-timeout');
    const commandTimeoutMs = globals.num('command-timeout');
    let main: Client | null = null;
    const tls = tlsFromFlags(globals);
    const stdin = new StdinReader();
    const credentials = await credentialsFromFlags(globals, stdin);
    const mk = (eps: string[]): Client => {
      const c = new Client({ endpoints: eps, dialTimeoutMs, requestTimeoutMs: commandTimeoutMs, tls, credentials });
      c.pool.onAuthNotEnabled = (e) => retryWarning(eps[0].replace(/^[a-z]+:\/\//, ''), e);
      clients.push(c);
      return c;
    };
    const ctx: Ctx = {
      display: { format: w as Format, hex: globals.bool('hex'), valueOnly: false },
      endpoints,
      dialTimeoutMs,
      commandTimeoutMs,
      stdin,
      client: () => (main ??= mk(endpoints)),
      clientFor: (ep) => mk([ep]),
      newClient: () => mk(endpoints),
      tlsFiles: tls === undefined ? undefined : { ca: tls.ca as Buffer | undefined, cert: tls.cert as Buffer | undefined, key: tls.key as Buffer | undefined },
      target: (endpoints[0] ?? '').replace(/^[a-z]+:\/\//, ''),
    };
    await cmd.run(ctx, p.args, own, p.dashArgs);
    return 0;
  } catch (e) {
    if (e instanceof CliExit) return e.code;
    err(`${errorLabel()} ${e instanceof Error ? e.message : String(e)}\n`);
    return Exit.Error;
  } finally {
    for (const c of clients) c.close();
  }
}
