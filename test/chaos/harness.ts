/**
 * The chaos harness: a real n-member cairn cluster (each member in a network namespace of
 * its own, or on loopback), concurrent clients doing reads, writes, cas (Txn on
 * mod_revision or value) and deletes on a few keys through different members, a seeded
 * nemesis (kill -9 / restart, SIGSTOP / SIGCONT, network partitions of every shape, slow
 * and lossy links, member remove / add / learner promote, leader transfer), and watchers on
 * every member from revision 1. At the end the history is checked for linearizability (per
 * key), the watches against each member's full history, and every acknowledged write
 * against that history. See README.md.
 */
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdserverpb } from '../../src/gen/proto';
import { ChaosCluster, type ChaosMember } from './members';
import { NetLab } from './netns';
import { checkHistory, toOperations, type CheckResult, type Expected, type HistoryEvent, type OpName } from './checker';
import { Rng } from './rng';
import { checkAcknowledgedWrites, checkWatches, type AckCheckResult, type WatchCheckResult, type WatchEvent, type WatcherLog } from './watch-checker';

const pb = etcdserverpb;

export interface ChaosOptions {
  durationS: number;
  seed: number;
  members?: number;
  clients?: number;
  keys?: number;
  /** Per-operation deadline; past it the outcome is unknown. */
  opTimeoutMs?: number;
  /** Time between faults (uniform in [min, max] ms). */
  faultIntervalMs?: [number, number];
  /** How long a member stays down / paused (uniform in [min, max] ms). */
  faultLengthMs?: [number, number];
  /** Include SIGSTOP/SIGCONT pauses (default true; same as leaving 'pause' out of `nemesis`). */
  pauses?: boolean;
  /** Fault kinds the nemesis picks from (default: all; without netns, all but partition and net). */
  nemesis?: FaultKind[];
  /**
   * Fault kinds injected first, in this order, before the random schedule (CI uses it so
   * that a short run always has a partition and a membership change).
   */
  required?: FaultKind[];
  /**
   * 'netns' (default): every member in its own network namespace on a bridge (root needed;
   * failing to create one is an error). 'loopback': 127.0.0.1, no partition / net faults.
   */
  net?: 'netns' | 'loopback';
  /** Where to write history, watch logs and member logs (default: a new dir under os.tmpdir()). */
  outDir?: string;
  log?: (line: string) => void;
}

export interface ChaosResult {
  seed: number;
  outDir: string;
  historyPath: string;
  operations: Record<string, number>;
  faults: Record<string, number>;
  linearizability: CheckResult;
  watch: WatchCheckResult;
  ack: AckCheckResult;
  /** Human-readable violations (empty = pass). */
  violations: string[];
  /** 'unknown' verdicts (search bound hit): not violations, but reported. */
  warnings: string[];
  /** Each anomaly with the part of the history around it. */
  anomalies: string[];
  /** Every fault as injected, with its time. */
  faultLog: string[];
  /** Members at the end / removed during the run. */
  finalMembers: string[];
  removedMembers: string[];
  summary: string;
}

const KEY_PREFIX = 'chaos/';

/**
 * kill: kill -9 then restart. pause: SIGSTOP then SIGCONT. partition: cut links between
 * members (isolate one, isolate the leader, minority/majority, bridge, one-way). net: slow
 * or lossy links. member: remove a member and add a new one, or add a learner, promote it
 * and remove an old one. transfer: move the leadership to another member.
 */
export const FAULT_KINDS = ['kill', 'pause', 'partition', 'net', 'member', 'transfer'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
const NET_FAULTS: FaultKind[] = ['partition', 'net'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ser = <T>(t: { encode(m: T): { finish(): Uint8Array } }) => (m: T): Buffer => Buffer.from(t.encode(m).finish());

function channel(m: ChaosMember): grpc.Client {
  return new grpc.Client(m.addr, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.min_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 500,
  });
}

function unary<Req, Res>(c: grpc.Client, method: string, reqT: { encode(m: Req): { finish(): Uint8Array } }, resT: { decode(b: Uint8Array): Res }, req: Req, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) =>
    c.makeUnaryRequest(`/etcdserverpb.KV/${method}`, ser(reqT), (b: Buffer) => resT.decode(b), req, { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    ),
  );
}

/**
 * Errors after which the request certainly never reached a server: the channel had no
 * connection (connection refused). Everything else (deadline, reset, server errors such as
 * "leader changed") leaves the outcome unknown.
 */
function definitelyNotSent(e: unknown): boolean {
  const err = e as grpc.ServiceError;
  return err?.code === grpc.status.UNAVAILABLE && /No connection established|ECONNREFUSED/.test(err.details ?? '') && !/ECONNRESET|dropped|closed/i.test(err.details ?? '');
}

class History {
  readonly events: HistoryEvent[] = [];
  private readonly t0 = process.hrtime.bigint();
  now(): number {
    return Number(process.hrtime.bigint() - this.t0);
  }
  add(e: Omit<HistoryEvent, 'time'>): void {
    this.events.push({ ...e, time: this.now() } as HistoryEvent);
  }
}

/** A member the clients may talk to. */
interface Endpoint {
  member: ChaosMember;
  channel: grpc.Client;
}

interface Ctx {
  cluster: ChaosCluster;
  /** Members the clients use (changes with membership). */
  active: Endpoint[];
  history: History;
  keys: string[];
  opTimeoutMs: number;
  stopping: boolean;
  nextProcess: number;
  counts: Record<string, number>;
  invokedWrites: Array<{ key: string; value: string }>;
}

/** Run one operation through member `mi`, recording invoke and completion. */
async function runOp(
  ctx: Ctx,
  process: number,
  mi: number,
  op: OpName,
  key: string,
  extra: { value?: string; expected?: Expected },
): Promise<{ type: 'ok' | 'fail' | 'info'; value?: string | null; revision?: number; retry: boolean }> {
  const c = ctx.active[mi % ctx.active.length].channel;
  const k = Buffer.from(key);
  ctx.history.add({ type: 'invoke', process, op, key, ...extra });
  if (extra.value !== undefined) ctx.invokedWrites.push({ key, value: extra.value });
  const t = ctx.opTimeoutMs;
  let done: { type: 'ok' | 'fail'; value?: string | number | null; revision?: number };
  try {
    switch (op) {
      case 'read': {
        const r = await unary(c, 'Range', pb.RangeRequest, pb.RangeResponse, { key: k }, t);
        const kv = r.kvs[0];
        done = kv ? { type: 'ok', value: Buffer.from(kv.value ?? []).toString(), revision: Number(kv.modRevision) } : { type: 'ok', value: null };
        break;
      }
      case 'write': {
        const r = await unary(c, 'Put', pb.PutRequest, pb.PutResponse, { key: k, value: Buffer.from(extra.value!) }, t);
        done = { type: 'ok', revision: Number(r.header!.revision) };
        break;
      }
      case 'cas': {
        const e = extra.expected!;
        const compare =
          'modRevision' in e
            ? { key: k, target: pb.Compare.CompareTarget.MOD, result: pb.Compare.CompareResult.EQUAL, modRevision: e.modRevision }
            : { key: k, target: pb.Compare.CompareTarget.VALUE, result: pb.Compare.CompareResult.EQUAL, value: Buffer.from(e.value) };
        const r = await unary(c, 'Txn', pb.TxnRequest, pb.TxnResponse, { compare: [compare], success: [{ requestPut: { key: k, value: Buffer.from(extra.value!) } }], failure: [] }, t);
        done = r.succeeded ? { type: 'ok', revision: Number(r.header!.revision) } : { type: 'fail' };
        break;
      }
      case 'delete': {
        const r = await unary(c, 'DeleteRange', pb.DeleteRangeRequest, pb.DeleteRangeResponse, { key: k }, t);
        done = { type: 'ok', value: Number(r.deleted), revision: Number(r.header!.revision) };
        break;
      }
    }
  } catch (e) {
    if (definitelyNotSent(e)) {
      ctx.history.add({ type: 'fail', process, op, key, error: (e as grpc.ServiceError).details });
      ctx.counts[`${op}:fail(not sent)`] = (ctx.counts[`${op}:fail(not sent)`] ?? 0) + 1;
      return { type: 'fail', retry: true };
    }
    ctx.history.add({ type: 'info', process, op, key });
    ctx.counts[`${op}:info`] = (ctx.counts[`${op}:info`] ?? 0) + 1;
    return { type: 'info', retry: true };
  }
  ctx.history.add({ process, op, key, ...done });
  ctx.counts[`${op}:${done.type}`] = (ctx.counts[`${op}:${done.type}`] ?? 0) + 1;
  return { type: done.type, value: typeof done.value === 'number' ? undefined : done.value, revision: done.revision, retry: false };
}

async function client(ctx: Ctx, idx: number, rng: Rng): Promise<void> {
  let process = ctx.nextProcess++;
  let mi = idx % ctx.active.length; // each client starts on its own member...
  const lastRead = new Map<string, { value: string | null; rev: number }>();
  let seq = 0;
  while (!ctx.stopping) {
    if (rng.chance(0.05)) mi = rng.int(0, ctx.active.length - 1); // now and then, another member
    const key = rng.pick(ctx.keys);
    const r = rng.next();
    let res;
    if (r >= 0.6 && r < 0.88 && rng.chance(0.6)) {
      // Most cas are read-modify-write: read the key first (a recorded read of its own).
      const rd = await runOp(ctx, process, mi, 'read', key, {});
      if (rd.type === 'ok') lastRead.set(key, { value: rd.value ?? null, rev: rd.revision ?? 0 });
      if (rd.type === 'info') process = ctx.nextProcess++;
      if (ctx.stopping) break;
    }
    if (r < 0.35) {
      res = await runOp(ctx, process, mi, 'read', key, {});
      if (res.type === 'ok') lastRead.set(key, { value: res.value ?? null, rev: res.revision ?? 0 });
    } else if (r < 0.6) {
      res = await runOp(ctx, process, mi, 'write', key, { value: `c${idx}-${seq++}` });
    } else if (r < 0.88) {
      const seen = lastRead.get(key) ?? { value: null, rev: 0 };
      const expected: Expected = seen.value !== null && rng.chance(0.3) ? { value: seen.value } : { modRevision: seen.rev };
      res = await runOp(ctx, process, mi, 'cas', key, { value: `c${idx}-${seq++}`, expected });
      if (res.type === 'ok') lastRead.set(key, { value: `c${idx}-${seq - 1}`, rev: res.revision ?? 0 });
    } else {
      res = await runOp(ctx, process, mi, 'delete', key, {});
      if (res.type === 'ok') lastRead.set(key, { value: null, rev: 0 });
    }
    if (res.type === 'info') process = ctx.nextProcess++; // its op may still be in flight: continue as a new process
    if (res.retry) {
      mi = (mi + 1) % ctx.active.length; // ...and moves on when that member does not answer
      await sleep(rng.int(20, 100));
    } else {
      await sleep(rng.int(0, 10));
    }
  }
}

// ---------------------------------------------------------------------------------
// Watchers

function toWatchEvent(e: { type?: number | null; kv?: { key?: Uint8Array | null; value?: Uint8Array | null; modRevision?: unknown } | null }): WatchEvent {
  return {
    revision: Number(e.kv!.modRevision),
    key: Buffer.from(e.kv!.key ?? []).toString(),
    type: e.type === 1 ? 'DELETE' : 'PUT',
    value: e.type === 1 ? '' : Buffer.from(e.kv!.value ?? []).toString(),
  };
}

/** A watch on one member over the chaos keys, re-created from the last seen revision + 1 after a disconnect. */
class Watcher {
  readonly events: WatchEvent[] = [];
  lastRev = 0;
  reconnects = 0;
  canceled: string[] = [];
  private call: grpc.ClientDuplexStream<etcdserverpb.IWatchRequest, etcdserverpb.WatchResponse> | null = null;
  private stopped = false;
  private loop: Promise<void>;

  constructor(
    readonly name: string,
    private readonly channel: grpc.Client,
    readonly startRevision: number,
    /** Reconnect after errors (the run's watchers) or give up (reference reads). */
    private readonly reconnect: boolean,
  ) {
    this.lastRev = startRevision - 1;
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const call = this.channel.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', ser(pb.WatchRequest), (b: Buffer) => pb.WatchResponse.decode(b));
        this.call = call;
        let finished = false;
        const finish = (): void => {
          if (finished) return;
          finished = true;
          this.call = null;
          resolve();
        };
        call.on('data', (r: etcdserverpb.WatchResponse) => {
          for (const e of r.events) {
            const ev = toWatchEvent(e);
            this.events.push(ev);
            if (ev.revision > this.lastRev) this.lastRev = ev.revision;
          }
          if (r.canceled) {
            this.canceled.push(`${r.cancelReason} (compact revision ${String(r.compactRevision)})`);
            call.cancel();
            finish();
          }
        });
        call.on('error', finish);
        call.on('end', finish);
        call.on('close', finish);
        call.write({ createRequest: { key: Buffer.from(KEY_PREFIX), rangeEnd: Buffer.from(prefixEnd(KEY_PREFIX)), startRevision: this.lastRev + 1 } });
      });
      if (!this.reconnect || this.stopped) return;
      this.reconnects++;
      await sleep(100);
    }
  }

  async waitFor(rev: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.lastRev < rev) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.call?.cancel();
    await this.loop;
  }
}

function prefixEnd(p: string): string {
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
}

// ---------------------------------------------------------------------------------
// Nemesis

interface NemesisCtx {
  ctx: Ctx;
  lab: NetLab | null;
  rng: Rng;
  faults: Record<string, number>;
  faultLog: string[];
  errors: string[];
  log: (s: string) => void;
  lengthMs: [number, number];
  /** Membership changed: the harness moves clients and watchers. */
  onRemoved: (m: ChaosMember) => void;
  onAdded: (m: ChaosMember) => void;
  t0: number;
}

function shuffle<T>(rng: Rng, xs: readonly T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

async function currentLeader(cluster: ChaosCluster): Promise<ChaosMember | null> {
  try {
    return await cluster.waitForLeader(3_000);
  } catch {
    return null;
  }
}

/** Inject one fault of `kind` and undo it (restart, resume, heal) before returning. */
async function injectFault(n: NemesisCtx, kind: FaultKind): Promise<void> {
  const { ctx, rng, lab } = n;
  const cluster = ctx.cluster;
  const at = (): string => `${((Date.now() - n.t0) / 1000).toFixed(1)}s`;
  const note = (name: string, what: string): void => {
    n.faults[name] = (n.faults[name] ?? 0) + 1;
    n.faultLog.push(`${at()} ${name}: ${what}`);
    n.log(`[nemesis ${at()}] ${name}: ${what}`);
  };
  const len = rng.int(...n.lengthMs);
  const names = cluster.members.map((m) => m.name);
  switch (kind) {
    case 'kill': {
      const m = rng.pick(cluster.members);
      note('kill', `kill -9 ${m.name} (pid ${m.pid}), restart in ${len} ms`);
      await m.kill9();
      await sleep(len);
      try {
        await m.start(60_000);
        n.log(`[nemesis ${at()}] ${m.name} restarted (pid ${m.pid})`);
      } catch (e) {
        n.errors.push(`member ${m.name} failed to restart: ${e instanceof Error ? e.message : String(e)}`);
      }
      return;
    }
    case 'pause': {
      const m = rng.pick(cluster.members);
      note('pause', `SIGSTOP ${m.name} (pid ${m.pid}) for ${len} ms`);
      m.signal('SIGSTOP');
      try {
        await sleep(len);
      } finally {
        m.signal('SIGCONT');
      }
      return;
    }
    case 'partition': {
      const net = lab!;
      const how = rng.chance(0.25) ? 'prohibit' : 'blackhole';
      const variant = rng.pick(['isolate', 'isolate-leader', 'majority', 'bridge', 'one-way', 'one-way-leader'] as const);
      const leader = variant.endsWith('leader') ? await currentLeader(cluster) : null;
      const x = leader?.name ?? rng.pick(names);
      const rest = names.filter((y) => y !== x);
      let what: string;
      if (variant === 'isolate' || variant === 'isolate-leader') {
        await net.partition([x], rest, how);
        what = `${x}${leader ? ' (leader)' : ''} | ${rest.join(',')}`;
      } else if (variant === 'majority') {
        const s = shuffle(rng, names);
        const k = rng.int(1, Math.floor((names.length - 1) / 2));
        await net.partition(s.slice(0, k), s.slice(k), how);
        what = `minority ${s.slice(0, k).join(',')} | majority ${s.slice(k).join(',')}`;
      } else if (variant === 'bridge') {
        // The bridge sees everyone; the two sides (split of the others) see only the bridge.
        const s = shuffle(rng, names);
        const others = s.slice(1);
        const k = Math.max(1, Math.floor(others.length / 2));
        await net.partition(others.slice(0, k), others.slice(k), how);
        what = `${others.slice(0, k).join(',')} <- ${s[0]} -> ${others.slice(k).join(',')}`;
      } else {
        // One direction only: x cannot send to the others (its heartbeats / votes are lost,
        // theirs arrive), or the others cannot send to x.
        const out = rng.chance(0.5);
        for (const y of rest) await (out ? net.cut(x, y, how) : net.cut(y, x, how));
        what = out ? `${x}${leader ? ' (leader)' : ''} -/-> ${rest.join(',')}` : `${rest.join(',')} -/-> ${x}${leader ? ' (leader)' : ''}`;
      }
      note(`partition:${variant}`, `${what} (${how}) for ${len} ms`);
      try {
        await sleep(len);
      } finally {
        await net.heal();
      }
      return;
    }
    case 'net': {
      const net = lab!;
      const m = rng.pick(names);
      if (rng.chance(0.5)) {
        const how = await net.slow(m, rng.int(20, 300));
        note('net:slow', `${m} sends through ${how} for ${len} ms`);
      } else {
        const how = await net.lossy(m, names.filter((y) => y !== m), rng.int(10, 40), () => rng.next());
        note('net:lossy', `${m} loses packets to its peers (${how}) for ${len} ms`);
      }
      try {
        await sleep(len);
      } finally {
        await net.heal();
      }
      return;
    }
    case 'member': {
      const learner = rng.chance(0.5);
      try {
        if (!learner) {
          const victim = rng.pick(cluster.members);
          note('member:remove', `member remove ${victim.name}${(await currentLeader(cluster)) === victim ? ' (leader)' : ''}`);
          n.onRemoved(victim);
          await cluster.remove(victim);
          lab?.removeHost(victim.name);
          const m = await cluster.add(false, n.log);
          note('member:add', `member add ${m.name} + start --initial-cluster-state existing`);
          n.onAdded(m);
        } else {
          const m = await cluster.add(true, n.log);
          note('member:add-learner', `member add --learner ${m.name}, start, promote`);
          n.onAdded(m);
          const victim = rng.pick(cluster.members.filter((y) => y !== m));
          note('member:remove', `member remove ${victim.name}`);
          n.onRemoved(victim);
          await cluster.remove(victim);
          lab?.removeHost(victim.name);
        }
      } catch (e) {
        // A membership command can fail while the cluster is busy electing: not a bug, but
        // a new member that cannot join is.
        const msg = e instanceof Error ? e.message : String(e);
        if (/exited before ready|not ready after|could not be promoted/.test(msg)) n.errors.push(`membership change: ${msg}`);
        note('member:failed', msg.split('\n')[0]);
      }
      return;
    }
    case 'transfer': {
      const leader = await currentLeader(cluster);
      if (!leader) return;
      const target = rng.pick(cluster.members.filter((m) => m !== leader));
      const r = await leader.ctl(['--command-timeout=5s', 'move-leader', await cluster.idOf(target)]);
      note(r.code === 0 ? 'transfer' : 'transfer:failed', `move-leader ${leader.name} -> ${target.name}${r.code === 0 ? '' : `: ${(r.stderr || r.stdout).trim()}`}`);
      return;
    }
  }
}

async function nemesis(n: NemesisCtx, kinds: FaultKind[], required: FaultKind[], intervalMs: [number, number]): Promise<void> {
  const { ctx } = n;
  const wait = async (ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!ctx.stopping && Date.now() < end) await sleep(Math.min(100, end - Date.now()));
  };
  const queue = [...required];
  while (!ctx.stopping) {
    await wait(n.rng.int(...intervalMs));
    if (ctx.stopping) break;
    const kind = queue.shift() ?? n.rng.pick(kinds);
    try {
      await injectFault(n, kind);
    } catch (e) {
      n.errors.push(`nemesis ${kind} failed: ${e instanceof Error ? e.message : String(e)}`);
      n.log(`[nemesis] ${kind} failed: ${e instanceof Error ? e.stack : String(e)}`);
      await n.lab?.heal().catch(() => undefined);
    }
  }
}

// ---------------------------------------------------------------------------------

async function finalRead(ctx: Ctx, key: string): Promise<string | null> {
  const process = ctx.nextProcess++;
  for (let attempt = 0; attempt < 60; attempt++) {
    const r = await runOp(ctx, process + attempt * 1000, attempt, 'read', key, {});
    if (r.type === 'ok') return r.value ?? null;
    await sleep(500);
  }
  throw new Error(`final read of ${key} failed 60 times`);
}

/** The history around an anomaly: events of `key` in [from, to] (ns), at most `max` lines. */
export function excerpt(events: HistoryEvent[], key: string, from: number, to: number, max = 40): string {
  const sel = events.filter((e) => e.key === key && e.time >= from && e.time <= to);
  const lines = sel.length > max ? [...sel.slice(0, max / 2), null, ...sel.slice(-max / 2)] : sel;
  return lines.map((e) => (e === null ? `      ... ${sel.length - max} more ...` : `      ${(e.time / 1e6).toFixed(1).padStart(9)} ms ${JSON.stringify({ ...e, time: undefined })}`)).join('\n');
}

/** Events that wrote or completed a write of one of the values named in `text` (c<client>-<n>). */
function excerptForValues(events: HistoryEvent[], text: string): string {
  const values = new Set(text.match(/c\d+-\d+/g) ?? []);
  if (values.size === 0) return '';
  const procs = new Set(events.filter((e) => e.type === 'invoke' && typeof e.value === 'string' && values.has(e.value)).map((e) => e.process));
  const lines: string[] = [];
  for (const e of events) {
    if ((typeof e.value === 'string' && values.has(e.value)) || (e.type !== 'invoke' && procs.has(e.process) && lines.length > 0)) {
      lines.push(`      ${(e.time / 1e6).toFixed(1).padStart(9)} ms ${JSON.stringify({ ...e, time: undefined })}`);
      if (lines.length >= 20) break;
    }
  }
  return lines.join('\n');
}

export function defaultNet(): 'netns' | 'loopback' {
  return process.env.CHAOS_NO_NETNS === '1' ? 'loopback' : 'netns';
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const n = opts.members ?? 3;
  const seed = opts.seed >>> 0;
  const netMode = opts.net ?? defaultNet();
  let kinds: FaultKind[] = opts.nemesis ?? [...FAULT_KINDS];
  if (opts.pauses === false) kinds = kinds.filter((k) => k !== 'pause');
  const required = opts.required ?? [];
  if (netMode === 'loopback') {
    // Asked for by name: an error. Left to the default "all": dropped, loudly.
    const wanted = [...(opts.nemesis ?? []), ...required].filter((k) => NET_FAULTS.includes(k));
    if (wanted.length) throw new Error(`faults ${[...new Set(wanted)].join(',')} need network namespaces (--net netns, root); this run is on loopback`);
    kinds = kinds.filter((k) => !NET_FAULTS.includes(k));
    log('chaos: *** loopback network: NO partition / net faults in this run ***');
  }
  if (kinds.length === 0) throw new Error('no fault kinds left to inject');
  const outDir = opts.outDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `cairn-chaos-${seed}-`));
  fs.mkdirSync(outDir, { recursive: true });
  const historyPath = path.join(outDir, 'history.jsonl');
  // Network first: failing to create it is an error, never a silent downgrade.
  const lab = netMode === 'netns' ? NetLab.create() : null;
  log(`chaos: seed ${seed}, ${opts.durationS} s, ${n} members, network ${netMode}${lab ? ` (bridge ${lab.bridge}, ${lab.subnet}.0/24)` : ''}, faults ${kinds.join(',')}${required.length ? ` (first: ${required.join(',')})` : ''}, output in ${outDir}`);
  let cluster: ChaosCluster;
  try {
    cluster = await ChaosCluster.start({ members: n, lab: lab ?? undefined });
  } catch (e) {
    await lab?.destroy();
    throw e;
  }
  if (lab) log(`chaos: members ${cluster.members.map((m) => `${m.name}=${m.addr}`).join(' ')}; ${lab.netem ? 'tc netem available' : 'no tc netem in this kernel: slow links use tbf, loss uses flapping routes'}`);
  const rng = new Rng(seed);
  const ctx: Ctx = {
    cluster,
    active: cluster.members.map((m) => ({ member: m, channel: channel(m) })),
    history: new History(),
    keys: Array.from({ length: opts.keys ?? 5 }, (_, i) => `${KEY_PREFIX}k${i}`),
    opTimeoutMs: opts.opTimeoutMs ?? 1500,
    stopping: false,
    nextProcess: 0,
    counts: {},
    invokedWrites: [],
  };
  const faults: Record<string, number> = {};
  const faultLog: string[] = [];
  const errors: string[] = [];
  const channels: grpc.Client[] = ctx.active.map((e) => e.channel);
  // One watcher per member (the run's), and those of removed members.
  const watchers = new Map<ChaosMember, Watcher>();
  const retiredWatchers: Array<{ w: Watcher; member: string }> = [];
  const watchOn = (m: ChaosMember): void => {
    const c = channel(m);
    channels.push(c);
    watchers.set(m, new Watcher(`watch@${m.name}`, c, 1, true));
  };
  for (const m of cluster.members) watchOn(m);
  /** A member that joined during the run: clients may use it, and it gets a watcher. */
  const track = (m: ChaosMember): void => {
    if (watchers.has(m)) return;
    const c = channel(m);
    channels.push(c);
    ctx.active.push({ member: m, channel: c });
    watchOn(m);
  };
  let refWatchers: Watcher[] = [];
  const nlog: string[] = [];
  const nemLog = (s: string): void => {
    nlog.push(s);
    log(s);
  };
  try {
    const clients = Array.from({ length: opts.clients ?? 6 }, (_, i) => client(ctx, i, new Rng(seed + 1 + i)));
    const nctx: NemesisCtx = {
      ctx,
      lab,
      rng: new Rng(rng.int(0, 2 ** 31)),
      faults,
      faultLog,
      errors,
      log: nemLog,
      lengthMs: opts.faultLengthMs ?? [500, 4000],
      t0: Date.now(),
      onRemoved: (m) => {
        const i = ctx.active.findIndex((e) => e.member === m);
        if (i >= 0) ctx.active.splice(i, 1);
        const w = watchers.get(m);
        if (w) {
          watchers.delete(m);
          retiredWatchers.push({ w, member: m.name });
          void w.stop();
        }
      },
      onAdded: (m) => track(m),
    };
    const nem = nemesis(nctx, kinds, required, opts.faultIntervalMs ?? [2000, 5000]);
    await sleep(opts.durationS * 1000);
    ctx.stopping = true;
    await Promise.all(clients);
    await nem;
    log(`chaos: workload done (${ctx.history.events.length} events); healing`);
    await lab?.heal();
    for (const m of cluster.members) {
      m.signal('SIGCONT');
      if (!m.running) {
        try {
          await m.start(60_000);
        } catch (e) {
          errors.push(`member ${m.name} failed to start after the run: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    await cluster.waitForLeader(60_000).catch((e: Error) => errors.push(`no leader after the run: ${e.message.split('\n')[0]}`));
    const converged = await cluster.waitConverged(60_000).catch((e: Error) => {
      errors.push(`members did not converge: ${e.message}`);
      return null;
    });
    // Final reads (recorded in the history too: they close the linearizability check).
    const finalValues: Record<string, string | null> = {};
    for (const k of ctx.keys) finalValues[k] = await finalRead(ctx, k);
    // Each member's full history, from a fresh watch from revision 1, up to its own revision.
    const members = [...cluster.members];
    // A member whose add failed part way (the nemesis was not told) may still have joined:
    // check it like the others (its watcher starts from revision 1 now).
    for (const m of members) track(m);
    const memberRevs: number[] = [];
    for (const m of members) {
      const ep = ctx.active.find((e) => e.member === m)!;
      try {
        const r = await unary(ep.channel, 'Range', pb.RangeRequest, pb.RangeResponse, { key: Buffer.from(KEY_PREFIX), rangeEnd: Buffer.from(prefixEnd(KEY_PREFIX)), serializable: true, countOnly: true }, 10_000);
        memberRevs.push(Number(r.header!.revision));
      } catch (e) {
        errors.push(`member ${m.name} does not answer after the run: ${e instanceof Error ? e.message : String(e)}`);
        memberRevs.push(0);
      }
    }
    const finalRev = Math.max(...memberRevs);
    if (memberRevs.some((r) => r !== finalRev)) errors.push(`members end at different revisions: ${members.map((m, i) => `${m.name}=${memberRevs[i]}`).join(' ')}${converged ? '' : ' (not converged)'}`);
    refWatchers = members.map((m) => {
      const c = channel(m);
      channels.push(c);
      return new Watcher(`reference@${m.name}`, c, 1, false);
    });
    const refs: Record<string, WatchEvent[]> = {};
    for (const [i, w] of refWatchers.entries()) {
      if (!(await w.waitFor(memberRevs[i], 30_000))) errors.push(`reference watch on ${members[i].name} stalled at revision ${w.lastRev} < ${memberRevs[i]}`);
      refs[members[i].name] = w.events;
    }
    // The run's watchers must catch up with their member too; those of removed members are
    // checked up to where they got.
    const watcherLogs: WatcherLog[] = [];
    for (const [i, m] of members.entries()) {
      const w = watchers.get(m)!;
      const caughtUp = await w.waitFor(memberRevs[i], 30_000);
      if (!caughtUp) errors.push(`${w.name} stalled at revision ${w.lastRev} < ${memberRevs[i]} (${w.reconnects} reconnects)`);
      for (const c of w.canceled) errors.push(`${w.name} was canceled: ${c}`);
      watcherLogs.push({ name: w.name, member: m.name, startRevision: 1, events: w.events, caughtUp });
    }
    for (const { w } of retiredWatchers) watcherLogs.push({ name: `${w.name} (removed)`, member: members[0].name, startRevision: 1, events: w.events, caughtUp: false });

    // Write everything down before checking (checks can be slow).
    fs.writeFileSync(historyPath, ctx.history.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    for (const w of [...watchers.values(), ...retiredWatchers.map((r) => r.w), ...refWatchers]) fs.writeFileSync(path.join(outDir, `${w.name.replace('@', '-')}.jsonl`), w.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    for (const m of [...cluster.members, ...cluster.retired]) fs.writeFileSync(path.join(outDir, `member-${m.name}.log`), m.output());
    fs.writeFileSync(path.join(outDir, 'nemesis.log'), nlog.join('\n') + '\n');
    log(`chaos: history written to ${historyPath}`);

    const ops = toOperations(ctx.history.events);
    const lin = checkHistory(ctx.history.events, { timeoutMs: 30_000, maxSteps: 3_000_000 });
    const watch = checkWatches(watcherLogs, refs);
    // Acknowledged writes against every member's history.
    const acks = members.map((m) => checkAcknowledgedWrites(ops, refs[m.name] ?? [], finalValues, ctx.invokedWrites));
    const ack = acks[0];

    const violations = [...errors];
    const anomalies: string[] = [];
    const capped = (what: string, xs: string[], max = 10): void => {
      for (const x of xs.slice(0, max)) violations.push(`${what}: ${x}`);
      if (xs.length > max) violations.push(`${what}: ... and ${xs.length - max} more`);
      for (const x of xs.slice(0, 3)) {
        const ex = excerptForValues(ctx.history.events, x);
        anomalies.push(`${what}: ${x}${ex ? `\n    history:\n${ex}` : ''}`);
      }
    };
    for (const k of lin.keys) {
      if (k.verdict !== 'violation') continue;
      violations.push(`linearizability: ${k.explanation}`);
      anomalies.push(`linearizability: ${k.explanation}${k.window ? `\n    history of ${k.key} around it (time since start, event):\n${excerpt(ctx.history.events, k.key, k.window.from, k.window.to)}` : ''}`);
    }
    capped('watch', watch.violations.map((v) => `${v.watcher}: ${v.kind}: ${v.detail}`), 20);
    for (const [i, m] of members.entries()) {
      const a = acks[i];
      capped(`lost write on ${m.name}`, a.lost);
      capped(`phantom write on ${m.name}`, a.phantoms);
      capped(`duplicate apply on ${m.name}`, a.duplicates);
      if (i === 0) capped('final value', a.finalMismatches);
    }
    for (const e of errors) anomalies.push(e);
    const warnings = lin.keys.filter((k) => k.verdict === 'unknown').map((k) => `linearizability of ${k.key}: unknown (search bound hit after ${k.steps} steps, ${k.operations} operations)`);

    const byOutcome: Record<string, number> = {};
    for (const [k, v] of Object.entries(ctx.counts)) byOutcome[k] = v;
    const totals = { ok: 0, fail: 0, info: 0 };
    for (const [k, v] of Object.entries(ctx.counts)) {
      const outcome = k.split(':')[1].startsWith('fail') ? 'fail' : (k.split(':')[1] as 'ok' | 'info');
      totals[outcome] += v;
    }
    const summary = [
      `==== chaos summary (seed ${seed}, ${opts.durationS} s, ${n} members, ${opts.clients ?? 6} clients, ${ctx.keys.length} keys, network ${netMode}${lab ? (lab.netem ? ' + netem' : ' (tbf/flapping for net faults)') : ''}) ====`,
      `operations: ${totals.ok + totals.fail + totals.info} (ok ${totals.ok}, fail ${totals.fail}, unknown ${totals.info}); by kind: ${Object.entries(byOutcome)
        .sort()
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
      `faults: ${Object.entries(faults)
        .sort()
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'none'}`,
      `members: ${members.map((m) => m.name).join(',')}${cluster.retired.length ? ` (removed during the run: ${cluster.retired.map((m) => m.name).join(',')})` : ''}`,
      `final revision: ${members.map((m, i) => `${m.name}=${memberRevs[i]}`).join(' ')}; watch events: ${Object.entries(watch.counts).map(([k, v]) => `${k}=${v}`).join(' ')}; reconnects: ${[...watchers.values()].map((w) => `${w.name}=${w.reconnects}`).join(' ')}`,
      `linearizability: ${lin.verdict} (${lin.keys.map((k) => `${k.key}: ${k.verdict}, ${k.operations} ops, ${k.steps} steps`).join('; ')})`,
      `watch: ${watch.ok ? 'ok' : `${watch.violations.length} violations`}`,
      `acknowledged writes: ${ack.acknowledged}; lost: ${members.map((m, i) => `${m.name}=${acks[i].lost.length}`).join(' ')}; phantoms: ${acks.reduce((s, a) => s + a.phantoms.length, 0)}; duplicates: ${acks.reduce((s, a) => s + a.duplicates.length, 0)}; final mismatches: ${ack.finalMismatches.length}`,
      `history: ${historyPath}`,
      ...(anomalies.length ? ['anomalies:', ...anomalies.slice(0, 10).map((a) => `  - ${a}`)] : []),
      violations.length === 0 ? 'VERDICT: PASS' + (warnings.length ? ` (with ${warnings.length} unknown)` : '') : `VERDICT: FAIL (${violations.length} violations)`,
    ].join('\n');
    return {
      seed,
      outDir,
      historyPath,
      operations: { ...totals, ...byOutcome },
      faults,
      linearizability: lin,
      watch,
      ack,
      violations,
      warnings,
      anomalies,
      faultLog,
      finalMembers: members.map((m) => m.name),
      removedMembers: cluster.retired.map((m) => m.name),
      summary,
    };
  } finally {
    ctx.stopping = true;
    for (const m of cluster.members) m.signal('SIGCONT');
    await Promise.all([...watchers.values(), ...retiredWatchers.map((r) => r.w), ...refWatchers].map((w) => w.stop()));
    for (const c of channels) c.close();
    if (!fs.existsSync(historyPath)) {
      try {
        fs.writeFileSync(historyPath, ctx.history.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
        for (const m of [...cluster.members, ...cluster.retired]) fs.writeFileSync(path.join(outDir, `member-${m.name}.log`), m.output());
        fs.writeFileSync(path.join(outDir, 'nemesis.log'), nlog.join('\n') + '\n');
      } catch {
        // best effort
      }
    }
    await cluster.destroy();
    await lab?.destroy();
  }
}
