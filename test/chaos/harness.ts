/**
 * The chaos harness: a real n-member cairn cluster, concurrent clients doing reads, writes,
 * cas (Txn on mod_revision or value) and deletes on a few keys through different members,
 * a seeded nemesis that kill -9s / restarts and SIGSTOP / SIGCONTs members, and watchers
 * on every member from revision 1. At the end the history is checked for
 * linearizability (per key), the watches against each member's full history, and every
 * acknowledged write against that history. See README.md.
 */
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { etcdserverpb } from '../../src/gen/proto';
import { startCairnCluster, type Cluster, type ClusterMember } from '../helpers/cluster';
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
  /** Include SIGSTOP/SIGCONT pauses (default true). */
  pauses?: boolean;
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
  summary: string;
}

const KEY_PREFIX = 'chaos/';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ser = <T>(t: { encode(m: T): { finish(): Uint8Array } }) => (m: T): Buffer => Buffer.from(t.encode(m).finish());

function channel(m: ClusterMember): grpc.Client {
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

interface Ctx {
  cluster: Cluster;
  channels: grpc.Client[];
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
  const c = ctx.channels[mi];
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
  let mi = idx % ctx.channels.length; // each client starts on its own member...
  const lastRead = new Map<string, { value: string | null; rev: number }>();
  let seq = 0;
  while (!ctx.stopping) {
    if (rng.chance(0.05)) mi = rng.int(0, ctx.channels.length - 1); // now and then, another member
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
      mi = (mi + 1) % ctx.channels.length; // ...and moves on when that member does not answer
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

async function nemesis(ctx: Ctx, rng: Rng, o: Required<Pick<ChaosOptions, 'faultIntervalMs' | 'faultLengthMs' | 'pauses'>>, faults: Record<string, number>, log: (s: string) => void, errors: string[]): Promise<void> {
  const { cluster } = ctx;
  const wait = async (ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!ctx.stopping && Date.now() < end) await sleep(Math.min(100, end - Date.now()));
  };
  const t0 = Date.now();
  const at = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;
  while (!ctx.stopping) {
    await wait(rng.int(...o.faultIntervalMs));
    if (ctx.stopping) break;
    const m = rng.pick(cluster.members);
    const len = rng.int(...o.faultLengthMs);
    const kind = !o.pauses || rng.chance(0.6) ? 'kill' : 'pause';
    if (kind === 'kill') {
      log(`[nemesis ${at()}] kill -9 ${m.name} (pid ${m.pid}), restart in ${len} ms`);
      faults.kill = (faults.kill ?? 0) + 1;
      await m.kill9();
      await sleep(len); // always restart, even when stopping
      try {
        await m.start(30_000);
        faults.restart = (faults.restart ?? 0) + 1;
        log(`[nemesis ${at()}] ${m.name} restarted (pid ${m.pid})`);
      } catch (e) {
        errors.push(`member ${m.name} failed to restart: ${e instanceof Error ? e.message : String(e)}`);
        log(`[nemesis ${at()}] ${m.name} FAILED to restart`);
        return;
      }
    } else {
      log(`[nemesis ${at()}] SIGSTOP ${m.name} (pid ${m.pid}) for ${len} ms`);
      faults.pause = (faults.pause ?? 0) + 1;
      process.kill(m.pid, 'SIGSTOP');
      try {
        await sleep(len);
      } finally {
        process.kill(m.pid, 'SIGCONT');
      }
    }
  }
}

// ---------------------------------------------------------------------------------

async function finalRead(ctx: Ctx, key: string): Promise<string | null> {
  const process = ctx.nextProcess++;
  for (let attempt = 0; attempt < 60; attempt++) {
    const r = await runOp(ctx, process + attempt * 1000, attempt % ctx.channels.length, 'read', key, {});
    if (r.type === 'ok') return r.value ?? null;
    await sleep(500);
  }
  throw new Error(`final read of ${key} failed 60 times`);
}

export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const n = opts.members ?? 3;
  const seed = opts.seed >>> 0;
  const outDir = opts.outDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `cairn-chaos-${seed}-`));
  fs.mkdirSync(outDir, { recursive: true });
  const historyPath = path.join(outDir, 'history.jsonl');
  log(`chaos: seed ${seed}, ${opts.durationS} s, ${n} members, output in ${outDir}`);
  const cluster = await startCairnCluster(n);
  const rng = new Rng(seed);
  const ctx: Ctx = {
    cluster,
    channels: cluster.members.map(channel),
    history: new History(),
    keys: Array.from({ length: opts.keys ?? 5 }, (_, i) => `${KEY_PREFIX}k${i}`),
    opTimeoutMs: opts.opTimeoutMs ?? 1500,
    stopping: false,
    nextProcess: 0,
    counts: {},
    invokedWrites: [],
  };
  const faults: Record<string, number> = {};
  const errors: string[] = [];
  const watchChannels = cluster.members.map(channel);
  const watchers = cluster.members.map((m, i) => new Watcher(`watch@${m.name}`, watchChannels[i], 1, true));
  let refWatchers: Watcher[] = [];
  try {
    const clients = Array.from({ length: opts.clients ?? 6 }, (_, i) => client(ctx, i, new Rng(seed + 1 + i)));
    const nem = nemesis(ctx, new Rng(rng.int(0, 2 ** 31)), { faultIntervalMs: opts.faultIntervalMs ?? [2000, 5000], faultLengthMs: opts.faultLengthMs ?? [500, 4000], pauses: opts.pauses ?? true }, faults, log, errors);
    await sleep(opts.durationS * 1000);
    ctx.stopping = true;
    await Promise.all(clients);
    await nem;
    log(`chaos: workload done (${ctx.history.events.length} events); healing`);
    for (const m of cluster.members) {
      if (!m.running) {
        try {
          await m.start(30_000);
        } catch (e) {
          errors.push(`member ${m.name} failed to start after the run: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }
    await cluster.waitForLeader(60_000);
    const converged = await cluster.waitConverged(60_000).catch((e: Error) => {
      errors.push(`members did not converge: ${e.message}`);
      return null;
    });
    // Final reads (recorded in the history too: they close the linearizability check).
    const finalValues: Record<string, string | null> = {};
    for (const k of ctx.keys) finalValues[k] = await finalRead(ctx, k);
    // Each member's full history, from a fresh watch from revision 1, up to its own revision.
    const memberRevs: number[] = [];
    for (const [i, m] of cluster.members.entries()) {
      try {
        const r = await unary(ctx.channels[i], 'Range', pb.RangeRequest, pb.RangeResponse, { key: Buffer.from(KEY_PREFIX), rangeEnd: Buffer.from(prefixEnd(KEY_PREFIX)), serializable: true, countOnly: true }, 10_000);
        memberRevs.push(Number(r.header!.revision));
      } catch (e) {
        errors.push(`member ${m.name} does not answer after the run: ${e instanceof Error ? e.message : String(e)}`);
        memberRevs.push(0);
      }
    }
    const finalRev = Math.max(...memberRevs);
    if (memberRevs.some((r) => r !== finalRev)) errors.push(`members end at different revisions: ${cluster.members.map((m, i) => `${m.name}=${memberRevs[i]}`).join(' ')}${converged ? '' : ' (not converged)'}`);
    refWatchers = cluster.members.map((m, i) => new Watcher(`reference@${m.name}`, watchChannels[i], 1, false));
    const refs: Record<string, WatchEvent[]> = {};
    for (const [i, w] of refWatchers.entries()) {
      if (!(await w.waitFor(memberRevs[i], 30_000))) errors.push(`reference watch on ${cluster.members[i].name} stalled at revision ${w.lastRev} < ${memberRevs[i]}`);
      refs[cluster.members[i].name] = w.events;
    }
    // The run's watchers must catch up with their member too.
    const watcherLogs: WatcherLog[] = [];
    for (const [i, w] of watchers.entries()) {
      const caughtUp = await w.waitFor(memberRevs[i], 30_000);
      if (!caughtUp) errors.push(`${w.name} stalled at revision ${w.lastRev} < ${memberRevs[i]} (${w.reconnects} reconnects)`);
      for (const c of w.canceled) errors.push(`${w.name} was canceled: ${c}`);
      watcherLogs.push({ name: w.name, member: cluster.members[i].name, startRevision: 1, events: w.events, caughtUp });
    }

    // Write everything down before checking (checks can be slow).
    fs.writeFileSync(historyPath, ctx.history.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    for (const w of [...watchers, ...refWatchers]) fs.writeFileSync(path.join(outDir, `${w.name.replace('@', '-')}.jsonl`), w.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    for (const m of cluster.members) fs.writeFileSync(path.join(outDir, `member-${m.name}.log`), m.output());
    log(`chaos: history written to ${historyPath}`);

    const ops = toOperations(ctx.history.events);
    const lin = checkHistory(ctx.history.events, { timeoutMs: 30_000, maxSteps: 3_000_000 });
    const watch = checkWatches(watcherLogs, refs);
    // Acknowledged writes against every member's history.
    const acks = cluster.members.map((m) => checkAcknowledgedWrites(ops, refs[m.name] ?? [], finalValues, ctx.invokedWrites));
    const ack = acks[0];

    const violations = [...errors];
    const capped = (what: string, xs: string[], max = 10): void => {
      for (const x of xs.slice(0, max)) violations.push(`${what}: ${x}`);
      if (xs.length > max) violations.push(`${what}: ... and ${xs.length - max} more`);
    };
    for (const k of lin.keys) if (k.verdict === 'violation') violations.push(`linearizability: ${k.explanation}`);
    capped('watch', watch.violations.map((v) => `${v.watcher}: ${v.kind}: ${v.detail}`), 20);
    for (const [i, m] of cluster.members.entries()) {
      const a = acks[i];
      capped(`lost write on ${m.name}`, a.lost);
      capped(`phantom write on ${m.name}`, a.phantoms);
      capped(`duplicate apply on ${m.name}`, a.duplicates);
      if (i === 0) capped('final value', a.finalMismatches);
    }
    const warnings = lin.keys.filter((k) => k.verdict === 'unknown').map((k) => `linearizability of ${k.key}: unknown (search bound hit after ${k.steps} steps, ${k.operations} operations)`);

    const byOutcome: Record<string, number> = {};
    for (const [k, v] of Object.entries(ctx.counts)) byOutcome[k] = v;
    const totals = { ok: 0, fail: 0, info: 0 };
    for (const [k, v] of Object.entries(ctx.counts)) {
      const outcome = k.split(':')[1].startsWith('fail') ? 'fail' : (k.split(':')[1] as 'ok' | 'info');
      totals[outcome] += v;
    }
    const summary = [
      `==== chaos summary (seed ${seed}, ${opts.durationS} s, ${n} members, ${opts.clients ?? 6} clients, ${ctx.keys.length} keys) ====`,
      `operations: ${totals.ok + totals.fail + totals.info} (ok ${totals.ok}, fail ${totals.fail}, unknown ${totals.info}); by kind: ${Object.entries(byOutcome)
        .sort()
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
      `faults: ${Object.entries(faults).map(([k, v]) => `${k}=${v}`).join(' ') || 'none'}`,
      `final revision: ${cluster.members.map((m, i) => `${m.name}=${memberRevs[i]}`).join(' ')}; watch events: ${Object.entries(watch.counts).map(([k, v]) => `${k}=${v}`).join(' ')}; reconnects: ${watchers.map((w) => `${w.name}=${w.reconnects}`).join(' ')}`,
      `linearizability: ${lin.verdict} (${lin.keys.map((k) => `${k.key}: ${k.verdict}, ${k.operations} ops, ${k.steps} steps`).join('; ')})`,
      `watch: ${watch.ok ? 'ok' : `${watch.violations.length} violations`}`,
      `acknowledged writes: ${ack.acknowledged}; lost: ${cluster.members.map((m, i) => `${m.name}=${acks[i].lost.length}`).join(' ')}; phantoms: ${acks.reduce((n, a) => n + a.phantoms.length, 0)}; duplicates: ${acks.reduce((n, a) => n + a.duplicates.length, 0)}; final mismatches: ${ack.finalMismatches.length}`,
      `history: ${historyPath}`,
      violations.length === 0 ? 'VERDICT: PASS' + (warnings.length ? ` (with ${warnings.length} unknown)` : '') : `VERDICT: FAIL (${violations.length} violations)`,
    ].join('\n');
    return { seed, outDir, historyPath, operations: { ...totals, ...byOutcome }, faults, linearizability: lin, watch, ack, violations, warnings, summary };
  } finally {
    ctx.stopping = true;
    for (const m of cluster.members) if (m.running) process.kill(m.pid, 'SIGCONT');
    await Promise.all([...watchers, ...refWatchers].map((w) => w.stop()));
    for (const c of [...ctx.channels, ...watchChannels]) c.close();
    if (!fs.existsSync(historyPath)) {
      try {
        fs.writeFileSync(historyPath, ctx.history.events.map((e) => JSON.stringify(e)).join('\n') + '\n');
        for (const m of cluster.members) fs.writeFileSync(path.join(outDir, `member-${m.name}.log`), m.output());
      } catch {
        // best effort
      }
    }
    await cluster.destroy();
  }
}
