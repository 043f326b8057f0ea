/**
 * watch, as etcdctl 3.4 runs it (etcdctl/ctlv3/command/watch_command.go): a key, a range
 * or a prefix from a revision, ETCDCTL_WATCH_KEY / ETCDCTL_WATCH_RANGE_END, `-- command`
 * run for every event with ETCD_WATCH_* in its environment, and -i: watch requests read
 * from stdin, one per line, each watched concurrently.
 */
import type { KeyRange, WatchBatch } from '../client';
import { b, type Command, type Ctx } from './cmd';
import { argify } from './commands';
import { runCommand } from './exec';
import { FlagSet, parseFlags, type FlagSpec } from './flags';
import { goQuote } from './gofmt';
import * as P from './printers';
import { CliExit, Exit, err, errorText, exitWithError } from './runtime';

const WATCH_FLAGS: FlagSpec[] = [
  b('interactive', 'Interactive mode', 'i'),
  b('prefix', 'Watch on a prefix if prefix is set'),
  b('prev-kv', 'get the previous key-value pair before the event happens'),
  { name: 'rev', kind: 'int', default: '0', usage: 'Revision to start watching' },
];

const BAD_ARGS = 'bad number of arguments';

/** Go's %q of a []string: ["a" "b"]. */
function quoteList(xs: string[]): string {
  return '[' + xs.map((x) => goQuote(x)).join(' ') + ']';
}

/** The watch range of etcdctl's getWatchChan: key, [key, range_end), or a prefix; an error text otherwise. */
function watchRange(args: string[], f: FlagSet): KeyRange | string {
  if (args.length < 1) return BAD_ARGS;
  const prefix = f.bool('prefix');
  if (args.length === 2 && prefix) return '`range_end` and `--prefix` are mutually exclusive';
  if (prefix) return args[0].length === 0 ? { key: '\x00', fromKey: true } : { key: args[0], prefix: true };
  if (args.length === 2) return { key: args[0], rangeEnd: args[1] };
  return { key: args[0] };
}

/** Print each response; with a command, run it once per event (exit 1 when it fails, as etcdctl). */
async function printWatch(ctx: Ctx, range: KeyRange, f: FlagSet, execArgs: string[]): Promise<void> {
  const rev = f.num('rev');
  const w = ctx.client().watch({ ...range, startRevision: rev > 0 ? rev : undefined, prevKv: f.bool('prev-kv') });
  try {
    for await (const batch of w) {
      P.printWatch(ctx.display, batch);
      if (execArgs.length > 0) await execPerEvent(batch, execArgs);
    }
  } catch (e) {
    if (e instanceof CliExit) throw e;
    err(`watch was canceled (${errorText(e)})\n`);
  }
}

async function execPerEvent(batch: WatchBatch, execArgs: string[]): Promise<void> {
  for (const ev of batch.events) {
    const failed = await runCommand(execArgs, {
      ETCD_WATCH_REVISION: String(batch.header.revision),
      ETCD_WATCH_EVENT_TYPE: ev.type === 'put' ? '"PUT"' : '"DELETE"',
      ETCD_WATCH_KEY: goQuote(ev.kv.key),
      ETCD_WATCH_VALUE: goQuote(ev.kv.value),
    });
    if (failed !== null) {
      err(`command ${quoteList(execArgs)} error (${failed})\n`);
      process.exit(1);
    }
  }
}

function envKeys(): { envKey: string; envRange: string } {
  const envKey = process.env.ETCDCTL_WATCH_KEY ?? '';
  const envRange = process.env.ETCDCTL_WATCH_RANGE_END ?? '';
  if (envKey === '' && envRange !== '') exitWithError(Exit.BadArgs, `ETCDCTL_WATCH_KEY is empty but got ETCDCTL_WATCH_RANGE_END=${goQuote(envRange)}`);
  return { envKey, envRange };
}

/** etcdctl's parseWatchArgs for one command line: the watch arguments and the command after `--`. */
function splitArgs(args: string[], dash: string[] | null, envKey: string, envRange: string): { watchArgs: string[]; execArgs: string[] } {
  if (dash !== null && dash.length === 0) exitWithError(Exit.BadArgs, 'bad number of arguments (found separator --, but no commands)');
  if (envKey !== '' && args.length > 0) exitWithError(Exit.BadArgs, 'bad number of arguments (found conflicting environment key)');
  const watchArgs = envKey !== '' ? [envKey, ...(envRange !== '' ? [envRange] : []), ...args] : args;
  if (watchArgs.length < 1) exitWithError(Exit.BadArgs, BAD_ARGS);
  return { watchArgs, execArgs: dash ?? [] };
}

async function interactive(ctx: Ctx, envKey: string, envRange: string): Promise<void> {
  const running: Array<Promise<void>> = [];
  for (;;) {
    const raw = await ctx.stdin.readLine();
    if (raw === null) exitWithError(Exit.InvalidInput, 'Error reading watch request line: EOF');
    const line = raw.replace(/\n$/, '');
    const a = argify(line);
    if (a.length < 1) {
      err(`Invalid command: ${line} (watch and progress supported)\n`);
      continue;
    }
    // etcdctl 3.4.23 also takes `progress` (a progress request on every watch); the
    // client library has no progress requests yet, so cairnctl accepts `watch` lines only.
    if (a[0] !== 'watch') {
      err(`Invalid command ${line} (only support watch)\n`);
      continue;
    }
    if (a.length < 2 && envKey === '') {
      err(`Invalid command ${line} (command type or key is not provided)\n`);
      continue;
    }
    // Every line starts from the flags' defaults (etcdctl parses it with a new flag set).
    const wf = new FlagSet(WATCH_FLAGS);
    const p = parseFlags(a.slice(1), [wf]);
    if (p.error) exitWithError(Exit.BadArgs, p.error);
    if (p.dashArgs !== null && p.dashArgs.length === 0) exitWithError(Exit.BadArgs, 'bad number of arguments (found separator --, but no commands)');
    const watchArgs = envKey !== '' ? [envKey, ...(envRange !== '' ? [envRange] : []), ...p.args] : p.args;
    const range = watchRange(watchArgs, wf);
    if (typeof range === 'string') {
      err(`Invalid command ${line} (${range})\n`);
      continue;
    }
    running.push(printWatch(ctx, range, wf, p.dashArgs ?? []));
  }
}

export const WATCH_COMMAND: Command = {
  name: 'watch',
  short: 'Watches events stream on keys or prefixes',
  usage: 'watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]',
  flags: WATCH_FLAGS,
  run: async (ctx, args, f, dash) => {
    const { envKey, envRange } = envKeys();
    if (f.bool('interactive')) return interactive(ctx, envKey, envRange);
    const { watchArgs, execArgs } = splitArgs(args, dash, envKey, envRange);
    const range = watchRange(watchArgs, f);
    if (typeof range === 'string') exitWithError(Exit.BadArgs, range);
    await printWatch(ctx, range, f, execArgs);
    ctx.client().close();
    exitWithError(Exit.Interrupted, 'watch is canceled by the server');
  },
};
