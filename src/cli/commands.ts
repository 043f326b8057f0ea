/**
 * cairnctl's commands, each written to behave as etcdctl v3 (3.4) does: same arguments,
 * validation messages, exit codes and output.
 */
import * as fs from 'node:fs';
import { compare, op, EtcdError, LeaseNotFoundError, type Comparison, type Operation, type GetQuery, type DeleteQuery, type PutOptions, type SortTarget, type SortOrder, type KeyRange } from '../client';
import { header as wireHeader, big, num, toLong } from '../client/convert';
import * as M from '../client/methods';
import { FlagSet, parseFlags, type FlagSpec } from './flags';
import { goDuration, goQuote, hex16, humanizeBytes, parseInt64, zapEpoch } from './gofmt';
import * as P from './printers';
import { CliExit, Exit, err, errorText, exitWithError, out } from './runtime';
import { b, call, i, s, type Command, type Ctx } from './cmd';
import { AUTH_COMMAND, ROLE_COMMAND, USER_COMMAND } from './cmd-auth';
import { CHECK_COMMAND, MAKE_MIRROR } from './cmd-check';
import { ELECT_COMMAND, LOCK_COMMAND } from './cmd-concurrency';
import { MEMBER_COMMANDS, MOVE_LEADER } from './cmd-member';
import { SNAPSHOT_RESTORE, SNAPSHOT_STATUS, Progress } from './cmd-snapshot';
import { WATCH_COMMAND } from './cmd-watch';
import { commandHelp, rootHelp } from './help';

export type { Command, Ctx } from './cmd';

// ---------------------------------------------------------------------------------
// put / get / del

const PUT_FLAGS: FlagSpec[] = [
  b('ignore-lease', 'updates the key using its current lease'),
  b('ignore-value', 'updates the key using its current value'),
  s('lease', '0', 'lease ID (in hexadecimal) to attach to the key'),
  b('prev-kv', 'return the previous key-value pair before modification'),
];

async function putOp(ctx: Ctx, args: string[], f: FlagSet, inTxn: boolean): Promise<{ key: string; value: Buffer; opts: PutOptions }> {
  if (args.length === 0) exitWithError(Exit.BadArgs, 'put command needs 1 argument and input from stdin or 2 arguments');
  const key = args[0];
  const ignoreValue = f.bool('ignore-value');
  if (ignoreValue && args.length > 1) exitWithError(Exit.BadArgs, "put command needs only 1 argument when 'ignore-value' is set");
  let value: Buffer = Buffer.alloc(0);
  if (!ignoreValue) {
    if (args.length > 1) value = Buffer.from(args[1], 'utf8');
    else {
      const all = inTxn ? Buffer.alloc(0) : await ctx.stdin.readAll();
      if (all.length === 0) exitWithError(Exit.BadArgs, 'put command needs 1 argument and input from stdin or 2 arguments');
      value = all;
    }
  }
  const id = parseInt64(f.str('lease'), 16);
  if ('error' in id) return exitWithError(Exit.BadArgs, `bad lease ID (${id.error}), expecting ID in Hex`);
  const opts: PutOptions = {};
  if (id.value !== 0n) opts.lease = id.value;
  if (f.bool('prev-kv')) opts.prevKv = true;
  if (ignoreValue) opts.ignoreValue = true;
  if (f.bool('ignore-lease')) opts.ignoreLease = true;
  return { key, value, opts };
}

const PUT_LONG = `Puts the given key into the store.

When <value> begins with '-', <value> is interpreted as a flag.
Insert '--' for workaround:

$ put <key> -- <value>
$ put -- <key> <value>

If <value> isn't given as a command line argument and '--ignore-value' is not specified,
this command tries to read the value from standard input.

If <lease> isn't given as a command line argument and '--ignore-lease' is not specified,
this command tries to read the value from standard input.

For example,
$ cat file | put <key>
will store the content of the file to <key>.
`;

const GET_FLAGS: FlagSpec[] = [
  s('consistency', 'l', 'Linearizable(l) or Serializable(s)'),
  b('from-key', 'Get keys that are greater than or equal to the given key using byte compare'),
  b('keys-only', 'Get only the keys'),
  i('limit', 'Maximum number of results'),
  s('order', '', 'Order of results; ASCEND or DESCEND (ASCEND by default)'),
  b('prefix', 'Get keys with matching prefix'),
  b('print-value-only', 'Only write values when using the "simple" output format'),
  i('rev', 'Specify the kv revision'),
  s('sort-by', '', 'Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION'),
];

function rangeOf(key: string, rangeEnd: string | undefined, prefix: boolean, fromKey: boolean): KeyRange {
  if (prefix) return key.length === 0 ? { key: '\x00', fromKey: true } : { key, prefix: true };
  if (fromKey) return { key: key.length === 0 ? '\x00' : key, fromKey: true };
  if (rangeEnd !== undefined) return { key, rangeEnd };
  return { key };
}

function getOp(args: string[], f: FlagSet): GetQuery {
  if (args.length === 0) exitWithError(Exit.BadArgs, 'get command needs one argument as key and an optional argument as range_end');
  const prefix = f.bool('prefix');
  const fromKey = f.bool('from-key');
  if (prefix && fromKey) exitWithError(Exit.BadArgs, '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  const q: Partial<GetQuery> = {};
  const cons = f.str('consistency');
  if (cons === 's') q.serializable = true;
  else if (cons !== 'l') exitWithError(Exit.BadFeature, `unknown consistency flag ${goQuote(cons)}`);
  if (args.length > 1 && (prefix || fromKey)) exitWithError(Exit.BadArgs, 'too many arguments, only accept one argument when `--prefix` or `--from-key` is set.');
  if (f.num('limit') !== 0) q.limit = f.num('limit');
  if (f.num('rev') > 0) q.revision = f.num('rev');
  let order: SortOrder = 'none';
  const o = f.str('order').toUpperCase();
  if (o === 'ASCEND') order = 'ascend';
  else if (o === 'DESCEND') order = 'descend';
  else if (o !== '') exitWithError(Exit.BadFeature, `bad sort order ${f.str('order')}`);
  let target: SortTarget = 'key';
  const t = f.str('sort-by').toUpperCase();
  const targets: Record<string, SortTarget> = { CREATE: 'create', KEY: 'key', MODIFY: 'mod', VALUE: 'value', VERSION: 'version' };
  if (t !== '') {
    if (targets[t] === undefined) exitWithError(Exit.BadFeature, `bad sort target ${f.str('sort-by')}`);
    target = targets[t];
  }
  if (target === 'key' && order === 'ascend') order = 'none';
  if (target !== 'key' || order !== 'none') q.sort = { target, order };
  if (f.bool('keys-only')) q.keysOnly = true;
  return { ...q, ...rangeOf(args[0], args[1], prefix, fromKey) };
}

const DEL_FLAGS: FlagSpec[] = [
  b('from-key', 'delete keys that are greater than or equal to the given key using byte compare'),
  b('prefix', 'delete keys with matching prefix'),
  b('prev-kv', 'return deleted key-value pairs'),
];

function delOp(args: string[], f: FlagSet): DeleteQuery {
  if (args.length === 0 || args.length > 2) exitWithError(Exit.BadArgs, 'del command needs one argument as key and an optional argument as range_end');
  const prefix = f.bool('prefix');
  const fromKey = f.bool('from-key');
  if (prefix && fromKey) exitWithError(Exit.BadArgs, '`--prefix` and `--from-key` cannot be set at the same time, choose one');
  if (args.length > 1 && (prefix || fromKey)) exitWithError(Exit.BadArgs, 'too many arguments, only accept one argument when `--prefix` or `--from-key` is set.');
  const q: DeleteQuery = rangeOf(args[0], args[1], prefix, fromKey);
  if (f.bool('prev-kv')) q.prevKv = true;
  return q;
}

// ---------------------------------------------------------------------------------
// txn

/** etcdctl's argify: split a line into arguments, honouring "..." (Go-unquoted) and '...'. */
export function argify(line: string): string[] {
  const re = /"(?:[^"\\]|\\.)*"|'[^']*'|[^'"\s]\S*[^'"\s]?/g;
  const args = line.match(re) ?? [];
  return args.map((a) => {
    if (a.startsWith("'")) return a.slice(1, Math.max(1, args.length - 1));
    if (a.startsWith('"')) {
      const u = goUnquote(a, 0);
      return u === null ? a : u.value;
    }
    return a;
  });
}

/** Scan a Go quoted string (%q) at s[pos]: "..." with escapes or `...`. */
function goUnquote(str: string, pos: number): { value: string; end: number } | null {
  const q = str[pos];
  if (q === '`') {
    const e = str.indexOf('`', pos + 1);
    return e < 0 ? null : { value: str.slice(pos + 1, e), end: e + 1 };
  }
  if (q !== '"') return null;
  let j = pos + 1;
  while (j < str.length && str[j] !== '"') j += str[j] === '\\' ? 2 : 1;
  if (j >= str.length) return null;
  try {
    const v: unknown = JSON.parse(str.slice(pos, j + 1).replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1').replace(/\\([abfv])/g, (_m, c: string) => ({ a: '\\u0007', b: '\\b', f: '\\f', v: '\\u000b' })[c] ?? c));
    return typeof v === 'string' ? { value: v, end: j + 1 } : null;
  } catch {
    return null;
  }
}

/** Go's fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val) as far as it gets. */
function scanCompare(rest: string): { n: number; key: string; op: string; val: string } {
  const r = { n: 0, key: '', op: '', val: '' };
  let p = 0;
  const skip = (): number => {
    const st = p;
    while (p < rest.length && (rest[p] === ' ' || rest[p] === '\t')) p++;
    return p - st;
  };
  skip();
  const k = goUnquote(rest, p);
  if (!k) return r;
  r.key = k.value;
  r.n = 1;
  p = k.end;
  if (rest[p] !== ')') return r;
  p++;
  if (skip() === 0) return r;
  const st = p;
  while (p < rest.length && !/\s/.test(rest[p])) p++;
  if (p === st) return r;
  r.op = rest.slice(st, p);
  r.n = 2;
  if (skip() === 0) return r;
  const v = goUnquote(rest, p);
  if (!v) return r;
  r.val = v.value;
  r.n = 3;
  return r;
}

function parseCompare(line: string): Comparison | string {
  const lp = line.indexOf('(');
  if (lp < 0) return `malformed comparison: ${line}`;
  const target = line.slice(0, lp);
  const sc = scanCompare(line.slice(lp + 1));
  if (sc.n !== 3) return `malformed comparison: ${line}; got ${target}(${goQuote(sc.key)}) ${sc.op} ${goQuote(sc.val)}`;
  const opr = sc.op;
  if (!['=', '!=', '<', '>'].includes(opr)) return `malformed comparison: ${line} (unknown op ${opr})`;
  const cop = opr as '=' | '!=' | '<' | '>';
  const int = (base: 10 | 16): bigint | null => {
    const v = parseInt64(sc.val, base);
    return 'error' in v ? null : v.value;
  };
  switch (target) {
    case 'ver':
    case 'version': {
      const v = int(10);
      return v === null ? `invalid txn compare request: ${line}` : compare.version(sc.key, cop, Number(v));
    }
    case 'c':
    case 'create': {
      const v = int(10);
      return v === null ? `invalid txn compare request: ${line}` : compare.createRevision(sc.key, cop, Number(v));
    }
    case 'm':
    case 'mod': {
      const v = int(10);
      return v === null ? `invalid txn compare request: ${line}` : compare.modRevision(sc.key, cop, Number(v));
    }
    case 'val':
    case 'value':
      return compare.value(sc.key, cop, sc.val);
    case 'lease': {
      const v = int(16);
      return v === null ? `invalid txn compare request: ${line}` : compare.lease(sc.key, cop, v);
    }
    default:
      return `malformed comparison: ${line} (unknown target ${target})`;
  }
}

async function parseTxnOp(ctx: Ctx, line: string): Promise<Operation> {
  const args = argify(line);
  if (args.length < 2) exitWithError(Exit.InvalidInput, `invalid txn compare request: ${line}`);
  const specs: Record<string, FlagSpec[]> = { put: PUT_FLAGS, get: GET_FLAGS, del: DEL_FLAGS };
  const fl = specs[args[0]];
  if (fl === undefined) exitWithError(Exit.InvalidInput, `invalid txn request: ${line}`);
  const f = new FlagSet(fl);
  const p = parseFlags(args.slice(1), [f, new FlagSet([{ name: 'help', short: 'h', kind: 'bool', default: 'false', usage: '' }])]);
  if (p.error) exitWithError(Exit.InvalidInput, `invalid txn request: ${line}`);
  if (args[0] === 'put') {
    const { key, value, opts } = await putOp(ctx, p.args, f, true);
    return op.put(key, value, opts);
  }
  if (args[0] === 'get') return op.get(getOp(p.args, f));
  return op.delete(delOp(p.args, f));
}

async function txnCommand(ctx: Ctx, args: string[], f: FlagSet): Promise<void> {
  if (args.length !== 0) exitWithError(Exit.BadArgs, 'txn command does not accept argument');
  const interactive = f.bool('interactive');
  const prompt = (t: string): void => {
    if (interactive) out(t + '\n');
  };
  const readLine = async (): Promise<string> => {
    const l = await ctx.stdin.readLine();
    if (l === null) exitWithError(Exit.InvalidInput, 'EOF');
    return l.trim();
  };
  const cmps: Comparison[] = [];
  prompt('compares:');
  for (;;) {
    const line = await readLine();
    if (line.length === 0) break;
    const c = parseCompare(line);
    if (typeof c === 'string') exitWithError(Exit.InvalidInput, c);
    cmps.push(c);
  }
  const readOps = async (): Promise<Operation[]> => {
    const ops: Operation[] = [];
    for (;;) {
      const line = await readLine();
      if (line.length === 0) break;
      ops.push(await parseTxnOp(ctx, line));
    }
    return ops;
  };
  prompt('success requests (get, put, del):');
  const then = await readOps();
  prompt('failure requests (get, put, del):');
  const els = await readOps();
  const c = ctx.client();
  const r = await call(ctx, () => c.txn().if(...cmps).then(...then).else(...els).commit({ timeoutMs: ctx.commandTimeoutMs }));
  P.printTxn(ctx.display, r);
}

// ---------------------------------------------------------------------------------
// lease

function leaseArg(arg: string): bigint {
  const v = parseInt64(arg, 16);
  if ('error' in v) return exitWithError(Exit.BadArgs, `bad lease ID arg (${v.error}), expecting ID in Hex`);
  return v.value;
}

async function keepAlive(ctx: Ctx, id: bigint, once: boolean): Promise<void> {
  const c = ctx.client();
  let ep;
  try {
    ep = await c.pool.pickReady(Date.now() + ctx.dialTimeoutMs + ctx.commandTimeoutMs);
  } catch (e) {
    return exitWithError(Exit.BadConnection, errorText(e));
  }
  const stream = c.pool.bidi(ep, M.Lease.LeaseKeepAlive);
  let timer: NodeJS.Timeout | null = null;
  await new Promise<void>((resolve, reject) => {
    const finish = (e?: unknown): void => {
      if (timer) clearTimeout(timer);
      stream.removeAllListeners('data');
      stream.on('error', () => undefined);
      stream.cancel();
      if (e) reject(e);
      else resolve();
    };
    stream.on('data', (r: M.LeaseKeepAliveResponse) => {
      const ttl = num(r.TTL);
      if (ttl <= 0) {
        if (once) return finish(new LeaseNotFoundError(5, 'etcdserver: requested lease not found'));
        if (ctx.display.format === 'simple') out(`lease ${hex16(id)} expired or revoked.\n`);
        return finish();
      }
      P.printKeepAlive(ctx.display, wireHeader(r.header), big(r.ID), ttl);
      if (once) return finish();
      timer = setTimeout(() => stream.write({ ID: toLong(id) }), Math.max(500, (ttl * 1000) / 3));
    });
    stream.on('error', (e: unknown) => finish(e instanceof EtcdError ? e : new EtcdError(14, errorText(e))));
    stream.on('end', () => finish());
    stream.write({ ID: toLong(id) });
  }).catch((e: unknown) => {
    if (e instanceof CliExit) throw e;
    const m = e instanceof EtcdError ? e.details : e instanceof Error && 'details' in e ? String((e as { details: unknown }).details) : String(e);
    exitWithError(Exit.BadConnection, m);
  });
}

// ---------------------------------------------------------------------------------
// endpoint / cluster helpers

async function endpointsFromCluster(ctx: Ctx, f: FlagSet): Promise<string[]> {
  if (!f.bool('cluster')) return ctx.endpoints;
  const c = ctx.client();
  const r = await call(ctx, () => c.cluster.memberList({ timeoutMs: ctx.commandTimeoutMs }));
  const eps: string[] = [];
  for (const m of r.members) eps.push(...m.clientUrls);
  return eps;
}

const CLUSTER_FLAG = b('cluster', 'use all endpoints from the cluster member list');

// ---------------------------------------------------------------------------------
// The command table

export const COMMANDS: Command[] = [
  {
    name: 'alarm',
    short: 'Alarm related commands',
    usage: 'alarm <subcommand>',
    flags: [],
    sub: [
      {
        name: 'disarm',
        short: 'Disarms all alarms',
        usage: 'alarm disarm',
        flags: [],
        run: async (ctx, args) => {
          if (args.length !== 0) exitWithError(Exit.BadArgs, 'alarm disarm command accepts no arguments');
          const c = ctx.client();
          const list = await call(ctx, () => c.maintenance.alarm({ timeoutMs: ctx.commandTimeoutMs }));
          const alarms = [];
          for (const a of list.alarms) {
            const r = await call(ctx, () => c.maintenance.alarm({ action: 'deactivate', memberId: a.memberId, alarm: a.alarm, timeoutMs: ctx.commandTimeoutMs }));
            alarms.push(...r.alarms);
          }
          P.printAlarm(ctx.display, null, alarms);
        },
      },
      {
        name: 'list',
        short: 'Lists all alarms',
        usage: 'alarm list',
        flags: [],
        run: async (ctx, args) => {
          if (args.length !== 0) exitWithError(Exit.BadArgs, 'alarm list command accepts no arguments');
          const c = ctx.client();
          const r = await call(ctx, () => c.maintenance.alarm({ timeoutMs: ctx.commandTimeoutMs }));
          P.printAlarm(ctx.display, r.header, r.alarms);
        },
      },
    ],
  },
  AUTH_COMMAND,
  CHECK_COMMAND,
  {
    name: 'compaction',
    short: 'Compacts the event history in etcd',
    usage: 'compaction [options] <revision>',
    flags: [b('physical', "'true' to wait for compaction to physically remove all old revisions")],
    run: async (ctx, args, f) => {
      if (args.length !== 1) exitWithError(Exit.BadArgs, 'compaction command needs 1 argument');
      const rev = parseInt64(args[0], 10);
      if ('error' in rev) return exitWithError(Exit.Error, rev.error);
      const c = ctx.client();
      await call(ctx, () => c.compact(Number(rev.value), { physical: f.bool('physical'), timeoutMs: ctx.commandTimeoutMs }));
      out(`compacted revision ${rev.value}\n`);
    },
  },
  {
    name: 'defrag',
    short: 'Defragments the storage of the etcd members with given endpoints',
    usage: 'defrag',
    flags: [CLUSTER_FLAG, s('data-dir', '', 'Optional. If present, defragments a data directory not in use by etcd.')],
    run: async (ctx, _args, f) => {
      if (f.str('data-dir') !== '') exitWithError(Exit.BadFeature, 'defrag --data-dir is not supported by cairnctl yet');
      let failures = 0;
      for (const ep of await endpointsFromCluster(ctx, f)) {
        try {
          await ctx.clientFor(ep).maintenance.defragment({ timeoutMs: ctx.commandTimeoutMs });
          out(`Finished defragmenting etcd member[${ep}]\n`);
        } catch (e) {
          err(`Failed to defragment etcd member[${ep}] (${errorText(e)})\n`);
          failures++;
        }
      }
      if (failures !== 0) throw new CliExit(Exit.Error);
    },
  },
  {
    name: 'del',
    short: 'Removes the specified key or range of keys [key, range_end)',
    usage: 'del [options] <key> [range_end]',
    flags: DEL_FLAGS,
    run: async (ctx, args, f) => {
      const q = delOp(args, f);
      const c = ctx.client();
      P.printDel(ctx.display, await call(ctx, () => c.delete(q, { timeoutMs: ctx.commandTimeoutMs })));
    },
  },
  ELECT_COMMAND,
  {
    name: 'endpoint',
    short: 'Endpoint related commands',
    usage: 'endpoint <subcommand>',
    flags: [],
    persistentFlags: [CLUSTER_FLAG],
    sub: [
      {
        name: 'hashkv',
        short: 'Prints the KV history hash for each endpoint in --endpoints',
        usage: 'endpoint hashkv',
        flags: [i('rev', 'maximum revision to hash (default: all revisions)')],
        run: async (ctx, _args, f) => {
          const list: P.EpHashKV[] = [];
          let failed = false;
          for (const ep of await endpointsFromCluster(ctx, f)) {
            try {
              const r = await ctx.clientFor(ep).maintenance.hashKV(f.num('rev'), { timeoutMs: ctx.commandTimeoutMs });
              list.push({ ep, ...r });
            } catch (e) {
              err(`Failed to get the hash of endpoint ${ep} (${errorText(e)})\n`);
              failed = true;
            }
          }
          P.printEndpointHashKV(ctx.display, list);
          if (failed) exitWithError(Exit.Error, 'unhealthy cluster');
        },
      },
      {
        name: 'health',
        short: 'Checks the healthiness of endpoints specified in `--endpoints` flag',
        usage: 'endpoint health',
        flags: [],
        run: async (ctx, _args, f) => {
          const eps = await endpointsFromCluster(ctx, f);
          const list = await Promise.all(
            eps.map(async (ep): Promise<P.EpHealth> => {
              const c = ctx.clientFor(ep);
              const st = process.hrtime.bigint();
              let error = '';
              try {
                await c.get('health', { timeoutMs: ctx.commandTimeoutMs });
              } catch (e) {
                if (!(e instanceof EtcdError && e.details === 'etcdserver: permission denied')) error = errorText(e);
              }
              const took = goDuration(process.hrtime.bigint() - st);
              if (error === '') {
                try {
                  const a = await c.maintenance.alarm({ timeoutMs: ctx.commandTimeoutMs });
                  if (a.alarms.length > 0) error = 'Active Alarm(s): ' + a.alarms.map((x) => x.alarm.toUpperCase()).join(' ');
                } catch (e) {
                  error = `Unable to fetch the alarm list: ${errorText(e)}`;
                }
              }
              return { ep, health: error === '', took, error };
            }),
          );
          P.printEndpointHealth(ctx.display, list);
          if (list.some((h) => !h.health)) exitWithError(Exit.Error, 'unhealthy cluster');
        },
      },
      {
        name: 'status',
        short: 'Prints out the status of endpoints specified in `--endpoints` flag',
        long: 'When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\nThe items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.\n',
        usage: 'endpoint status',
        flags: [],
        run: async (ctx, _args, f) => {
          const list: P.EpStatus[] = [];
          let failed = false;
          for (const ep of await endpointsFromCluster(ctx, f)) {
            try {
              list.push({ ep, status: await ctx.clientFor(ep).maintenance.status({ timeoutMs: ctx.commandTimeoutMs }) });
            } catch (e) {
              err(`Failed to get the status of endpoint ${ep} (${errorText(e)})\n`);
              failed = true;
            }
          }
          P.printEndpointStatus(ctx.display, list);
          if (failed) throw new CliExit(Exit.Error);
        },
      },
    ],
  },
  {
    name: 'get',
    short: 'Gets the key or a range of keys',
    usage: 'get [options] <key> [range_end]',
    flags: GET_FLAGS,
    run: async (ctx, args, f) => {
      const q = getOp(args, f);
      const c = ctx.client();
      const r = await call(ctx, () => c.get(q, { timeoutMs: ctx.commandTimeoutMs }));
      P.printGet({ ...ctx.display, valueOnly: f.bool('print-value-only') }, r);
    },
  },
  {
    name: 'help',
    short: 'Help about any command',
    usage: 'help [command]',
    long: 'Help provides help for any command in the application.\nSimply type etcdctl help [path to command] for full details.',
    flags: [],
    noClient: true,
    run: async (_ctx, args) => {
      // cobra's help command: the help of the named command, or the root's.
      const path: Command[] = [];
      let list: Command[] | undefined = COMMANDS;
      for (const a of args) {
        const c: Command | undefined = list?.find((x) => x.name === a);
        if (c === undefined) break;
        path.push(c);
        list = c.sub;
      }
      if (path.length === 0) {
        if (args.length > 0) err(`Unknown help topic [${args.map((a) => '`' + a + '`').join(' ')}]\n`);
        return out(rootHelp(COMMANDS, args.length === 0));
      }
      out(commandHelp(path));
    },
  },
  {
    name: 'lease',
    short: 'Lease related commands',
    usage: 'lease <subcommand>',
    flags: [],
    sub: [
      {
        name: 'grant',
        short: 'Creates leases',
        usage: 'lease grant <ttl>',
        flags: [],
        run: async (ctx, args) => {
          if (args.length !== 1) exitWithError(Exit.BadArgs, 'lease grant command needs TTL argument');
          const ttl = parseInt64(args[0], 10);
          if ('error' in ttl) return exitWithError(Exit.BadArgs, `bad TTL (${ttl.error})`);
          const c = ctx.client();
          const r = await call(ctx, () => c.lease.grant(Number(ttl.value), { timeoutMs: ctx.commandTimeoutMs }), (m) => `failed to grant lease (${m})`);
          P.printGrant(ctx.display, r.header, r.id, r.ttl);
        },
      },
      {
        name: 'keep-alive',
        short: 'Keeps leases alive (renew)',
        usage: 'lease keep-alive [options] <leaseID>',
        flags: [b('once', 'Resets the keep-alive time to its original value and exits immediately')],
        run: async (ctx, args, f) => {
          if (args.length !== 1) exitWithError(Exit.BadArgs, 'lease keep-alive command needs lease ID as argument');
          await keepAlive(ctx, leaseArg(args[0]), f.bool('once'));
        },
      },
      {
        name: 'list',
        short: 'List all active leases',
        usage: 'lease list',
        flags: [],
        run: async (ctx) => {
          const c = ctx.client();
          const r = await call(ctx, () => c.lease.leases({ timeoutMs: ctx.commandTimeoutMs }), (m) => `failed to list leases (${m})`, Exit.BadConnection);
          P.printLeases(ctx.display, r.header, r.leases);
        },
      },
      {
        name: 'revoke',
        short: 'Revokes leases',
        usage: 'lease revoke <leaseID>',
        flags: [],
        run: async (ctx, args) => {
          if (args.length !== 1) exitWithError(Exit.BadArgs, 'lease revoke command needs 1 argument');
          const id = leaseArg(args[0]);
          const c = ctx.client();
          const r = await call(ctx, () => c.lease.revoke(id, { timeoutMs: ctx.commandTimeoutMs }), (m) => `failed to revoke lease (${m})`);
          P.printRevoke(ctx.display, r.header, id);
        },
      },
      {
        name: 'timetolive',
        short: 'Get lease information',
        usage: 'lease timetolive <leaseID> [options]',
        flags: [b('keys', 'Get keys attached to this lease')],
        run: async (ctx, args, f) => {
          if (args.length !== 1) exitWithError(Exit.BadArgs, 'lease timetolive command needs lease ID as argument');
          const id = leaseArg(args[0]);
          const c = ctx.client();
          const r = await call(ctx, () => c.lease.timeToLive(id, { keys: f.bool('keys'), timeoutMs: ctx.commandTimeoutMs }));
          P.printTimeToLive(ctx.display, r, f.bool('keys'));
        },
      },
    ],
  },
  LOCK_COMMAND,
  MAKE_MIRROR,
  {
    name: 'member',
    short: 'Membership related commands',
    usage: 'member <subcommand>',
    flags: [],
    sub: [
      ...MEMBER_COMMANDS.slice(0, 1),
      {
        name: 'list',
        short: 'Lists all members in the cluster',
        long: 'When --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.\nThe items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.\n',
        usage: 'member list',
        flags: [],
        run: async (ctx) => {
          const c = ctx.client();
          const r = await call(ctx, () => c.cluster.memberList({ timeoutMs: ctx.commandTimeoutMs }));
          P.printMemberList(ctx.display, r.header, r.members);
        },
      },
      ...MEMBER_COMMANDS.slice(1),
    ],
  },
  MOVE_LEADER,
  {
    name: 'put',
    short: 'Puts the given key into the store',
    long: PUT_LONG,
    usage: 'put [options] <key> <value> (<value> can also be given from stdin)',
    flags: PUT_FLAGS,
    run: async (ctx, args, f) => {
      const { key, value, opts } = await putOp(ctx, args, f, false);
      const c = ctx.client();
      P.printPut(ctx.display, await call(ctx, () => c.put(key, value, { ...opts, timeoutMs: ctx.commandTimeoutMs })));
    },
  },
  ROLE_COMMAND,
  {
    name: 'snapshot',
    short: 'Manages etcd node snapshots',
    usage: 'snapshot <subcommand>',
    flags: [],
    sub: [
      SNAPSHOT_RESTORE,
      {
        name: 'save',
        short: 'Stores an etcd node backend snapshot to a given file',
        usage: 'snapshot save <filename>',
        flags: [],
        run: async (ctx, args) => {
          if (args.length !== 1) exitWithError(Exit.BadArgs, 'snapshot save expects one argument');
          if (ctx.endpoints.length !== 1) exitWithError(Exit.BadArgs, `snapshot must be requested to one selected node, not multiple [${ctx.endpoints.join(' ')}]`);
          const path = args[0];
          const part = path + '.part';
          const log = (o: Record<string, string | number>): void => err(JSON.stringify({ level: 'info', ...o }) + '\n');
          const ep = ctx.endpoints[0];
          let fd: number;
          try {
            fs.rmSync(part, { force: true });
            fd = fs.openSync(part, 'w', 0o600);
          } catch (e) {
            return exitWithError(Exit.Error, `could not open ${part} (${e instanceof Error ? e.message : String(e)})`);
          }
          log({ ts: Number(zapEpoch()), caller: 'snapshot/v3_snapshot.go:119', msg: 'created temporary db file', path: part });
          const st = process.hrtime.bigint();
          let size = 0;
          const progress = new Progress('downloading');
          try {
            let first = true;
            for await (const chunk of ctx.client().maintenance.snapshot()) {
              if (first) {
                log({ ts: new Date().toISOString(), caller: 'clientv3/maintenance.go:200', msg: 'opened snapshot stream; downloading' });
                log({ ts: Number(zapEpoch()), caller: 'snapshot/v3_snapshot.go:127', msg: 'fetching snapshot', endpoint: ep });
                first = false;
              }
              fs.writeSync(fd, chunk);
              size += chunk.length;
              progress.update(null, size);
            }
            progress.done();
            log({ ts: new Date().toISOString(), caller: 'clientv3/maintenance.go:208', msg: 'completed snapshot read; closing' });
          } catch (e) {
            progress.done();
            fs.closeSync(fd);
            return exitWithError(Exit.Error, errorText(e));
          }
          fs.fsyncSync(fd);
          fs.closeSync(fd);
          const took = Number(process.hrtime.bigint() - st) / 1e9;
          log({ ts: Number(zapEpoch()), caller: 'snapshot/v3_snapshot.go:142', msg: 'fetched snapshot', endpoint: ep, size: humanizeBytes(size), took });
          fs.renameSync(part, path);
          log({ ts: Number(zapEpoch()), caller: 'snapshot/v3_snapshot.go:152', msg: 'saved', path });
          out(`Snapshot saved at ${path}\n`);
        },
      },
      SNAPSHOT_STATUS,
    ],
  },
  {
    name: 'txn',
    short: 'Txn processes all the requests in one transaction',
    usage: 'txn [options]',
    flags: [b('interactive', 'Input transaction in interactive mode', 'i')],
    run: (ctx, args, f) => txnCommand(ctx, args, f),
  },
  USER_COMMAND,
  {
    name: 'version',
    short: 'Prints the version of etcdctl',
    usage: 'version',
    flags: [],
    noClient: true,
    run: async () => {
      out('etcdctl version: 3.4.23\nAPI version: 3.4\n');
    },
  },
  WATCH_COMMAND,
];

/** etcdctl 3.4's top-level command names (for "Did you mean this?"). */
export const ETCDCTL_COMMANDS = [
  'alarm', 'auth', 'check', 'compaction', 'defrag', 'del', 'elect', 'endpoint', 'get', 'help', 'lease', 'lock', 'make-mirror',
  'member', 'migrate', 'move-leader', 'put', 'role', 'snapshot', 'txn', 'user', 'version', 'watch',
];
