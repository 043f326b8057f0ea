/**
 * `npm run bench -- --scale`: memory and scale, cairn next to etcd.
 *
 * For each round and server (alternating cairn, etcd, cairn, ...), on a fresh member:
 *
 *   1. load 10 000 keys, then run put and range (linearizable) over those 10 000 keys;
 *   2. load up to 100 000 keys, wait, read the member's RSS;
 *   3. load up to --scale-keys (1 000 000) keys, wait, read RSS (and the data dir's size);
 *   4. run range and put over all --scale-keys keys;
 *   5. kill -9 the member, start it again on the same data dir and time how long until the
 *      first Range of a loaded key is answered (spawn -> first served request).
 *
 * Keys are --key-size (8) bytes, values --val-size (256) bytes, as in the other workloads.
 * Loading goes through Txn requests of LOAD_OPS_PER_TXN puts each (well under both servers'
 * --max-txn-ops 128), LOAD_IN_FLIGHT at a time over one HTTP/2 connection, so it takes
 * seconds rather than minutes; each Txn is a single log entry on both servers.
 *
 * Ratios are cairn/etcd per round (the two runs of a round are back to back), the median
 * over rounds quoted; for RSS and restart time lower is better.
 */
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as path from 'node:path';
import { etcdserverpb } from '../src/gen/proto';
import { makeTempDir, startCairn, startEtcd, type ServerKind, type ServerProc } from './lib/procs';
import { runLoad, type LoadResult, type TransportKind } from './loadgen';
import { keyOf, valueOf, type KeyOptions } from './loadgen/workloads';

export interface ScaleOptions {
  against: ServerKind[];
  rounds: number;
  /** Keys loaded at the large end (default 1 000 000). */
  keys: number;
  keySize: number;
  valSize: number;
  durationMs: number;
  warmupMs: number;
  clients: number;
  conns: number;
  transport: TransportKind;
  heartbeatMs: number;
  electionMs: number;
  /** cairn from a private copy of dist (see run.ts). */
  cairnDist: () => { bin: string; env: NodeJS.ProcessEnv } | null;
  log: (line: string) => void;
}

/** What one server gave in one round. */
export interface ScaleRound {
  server: ServerKind;
  round: number;
  rssMiB100k: number;
  rssMiBLarge: number;
  dataDirMiBLarge: number;
  loadKeysPerSec: number;
  put10k: LoadResult;
  range10k: LoadResult;
  putLarge: LoadResult;
  rangeLarge: LoadResult;
  /** kill -9, spawn -> first answered Range, ms. */
  restartMs: number;
  rssMiBAfterRestart: number;
}

const SMALL_KEYS = 10_000;
const MID_KEYS = 100_000;
const LOAD_OPS_PER_TXN = 100;
const LOAD_IN_FLIGHT = 16;
/** Idle time before reading RSS, so background flushes and GC after the load settle. */
const RSS_SETTLE_MS = 3_000;
const RESTART_PROBE_EVERY_MS = 10;
const RESTART_TIMEOUT_MS = 300_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Math.round(Number(m[1]) / 1024);
}

function dirMiB(dir: string): number {
  let bytes = 0;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) bytes += fs.statSync(p).size;
    }
  };
  walk(dir);
  return Math.round(bytes / (1024 * 1024));
}

/** One unary gRPC call on an HTTP/2 session (hand-framed, as the h2 transport does). */
function unary(session: http2.ClientHttp2Session, method: string, body: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame[0] = 0;
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const req = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let status: string | undefined;
    let message = '';
    const readStatus = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) {
        status = String(h['grpc-status']);
        message = decodeURIComponent(String(h['grpc-message'] ?? ''));
      }
    };
    req.on('response', readStatus);
    req.on('trailers', readStatus);
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => {
      if (status !== '0') {
        reject(new Error(`${method}: grpc-status ${status ?? '(none)'} ${message}`));
        return;
      }
      const all = Buffer.concat(chunks);
      resolve(all.subarray(5, 5 + all.readUInt32BE(1)));
    });
    req.end(frame);
  });
}

function connect(endpoint: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(endpoint);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Puts keys [from, to) with Txn requests, LOAD_IN_FLIGHT at a time; returns keys/s. */
async function load(endpoint: string, from: number, to: number, keySize: number, valSize: number): Promise<number> {
  const session = await connect(endpoint);
  const value = valueOf(valSize);
  const t0 = process.hrtime.bigint();
  let next = from;
  const worker = async (): Promise<void> => {
    while (next < to) {
      const lo = next;
      const hi = Math.min(to, lo + LOAD_OPS_PER_TXN);
      next = hi;
      const success: etcdserverpb.IRequestOp[] = [];
      for (let i = lo; i < hi; i++) success.push({ requestPut: { key: keyOf(i, keySize), value } });
      const resp = etcdserverpb.TxnResponse.decode(await unary(session, '/etcdserverpb.KV/Txn', etcdserverpb.TxnRequest.encode({ success }).finish()));
      if (!resp.succeeded || resp.responses.length !== hi - lo) throw new Error(`load: Txn of keys ${lo}..${hi - 1} answered succeeded=${String(resp.succeeded)} with ${resp.responses.length} responses`);
    }
  };
  try {
    await Promise.all(Array.from({ length: LOAD_IN_FLIGHT }, worker));
  } finally {
    session.close();
  }
  return Math.round((to - from) / (Number(process.hrtime.bigint() - t0) / 1e9));
}

/** Polls with a linearizable Range of `key` until it is answered with one kv; ms since `since`. */
async function firstServed(endpoint: string, key: Buffer, since: bigint): Promise<number> {
  const body = etcdserverpb.RangeRequest.encode({ key }).finish();
  const deadline = Date.now() + RESTART_TIMEOUT_MS;
  while (Date.now() < deadline) {
    let session: http2.ClientHttp2Session | undefined;
    try {
      session = await connect(endpoint);
      session.on('error', () => undefined);
      const resp = etcdserverpb.RangeResponse.decode(await unary(session, '/etcdserverpb.KV/Range', body));
      if (resp.kvs.length === 1) return Number(process.hrtime.bigint() - since) / 1e6;
    } catch {
      // not up yet: connection refused, or unavailable while it replays
    } finally {
      session?.destroy();
    }
    await sleep(RESTART_PROBE_EVERY_MS);
  }
  throw new Error(`no answer to Range within ${RESTART_TIMEOUT_MS} ms of the restart`);
}

async function throughput(o: ScaleOptions, m: ServerProc, workload: 'put' | 'range', keySpace: number): Promise<LoadResult> {
  const keys: KeyOptions = { keySize: o.keySize, valSize: o.valSize, keySpace, keyOrder: 'random' };
  const r = await runLoad({
    endpoint: m.endpoint,
    workload,
    keys,
    clients: o.clients,
    conns: o.conns,
    transport: o.transport,
    warmupMs: o.warmupMs,
    durationMs: o.durationMs,
    serverPids: [m.pid],
  });
  if (r.errorsTotal > 0) o.log(`  !! ${m.kind} ${workload} over ${keySpace} keys: ${r.errorsTotal} errors ${JSON.stringify(r.errorsByCode)} e.g. ${r.errorSamples.slice(0, 2).join(' | ')}`);
  return r;
}

async function oneRound(o: ScaleOptions, server: ServerKind, round: number): Promise<ScaleRound> {
  const dataDir = makeTempDir(`bench-scale-${server}-`);
  const extraArgs = ['--heartbeat-interval', String(o.heartbeatMs), '--election-timeout', String(o.electionMs)];
  const dist = server === 'cairn' ? o.cairnDist() : null;
  // A restart after kill -9 at 1M keys may take a while: allow it.
  const readyTimeoutMs = RESTART_TIMEOUT_MS;
  const m = server === 'etcd'
    ? await startEtcd({ dataDir, extraArgs, readyTimeoutMs })
    : await startCairn({ dataDir, extraArgs, readyTimeoutMs, bin: dist?.bin, env: dist?.env });
  const say = (s: string): void => o.log(`  round ${round} ${server.padEnd(5)} ${s}`);
  try {
    await load(m.endpoint, 0, SMALL_KEYS, o.keySize, o.valSize);
    const put10k = await throughput(o, m, 'put', SMALL_KEYS);
    const range10k = await throughput(o, m, 'range', SMALL_KEYS);
    say(`${SMALL_KEYS} keys: put ${Math.round(put10k.opsPerSec)} ops/s, range ${Math.round(range10k.opsPerSec)} ops/s`);
    const t0 = Date.now();
    const rate1 = await load(m.endpoint, SMALL_KEYS, MID_KEYS, o.keySize, o.valSize);
    await sleep(RSS_SETTLE_MS);
    const rssMiB100k = rssMiB(m.pid);
    say(`${MID_KEYS} keys (loaded at ${rate1} keys/s): RSS ${rssMiB100k} MiB`);
    const rate2 = await load(m.endpoint, MID_KEYS, o.keys, o.keySize, o.valSize);
    const loadKeysPerSec = Math.round((o.keys - SMALL_KEYS) / ((Date.now() - t0 - RSS_SETTLE_MS) / 1000));
    await sleep(RSS_SETTLE_MS);
    const rssMiBLarge = rssMiB(m.pid);
    const dataDirMiBLarge = dirMiB(dataDir);
    say(`${o.keys} keys (loaded at ${rate2} keys/s): RSS ${rssMiBLarge} MiB, data dir ${dataDirMiBLarge} MiB`);
    const rangeLarge = await throughput(o, m, 'range', o.keys);
    const putLarge = await throughput(o, m, 'put', o.keys);
    say(`${o.keys} keys: put ${Math.round(putLarge.opsPerSec)} ops/s, range ${Math.round(rangeLarge.opsPerSec)} ops/s`);
    await m.kill9();
    const since = process.hrtime.bigint();
    const ready = m.restart(); // spawns at once (the process is gone), then waits for readiness its own way
    const restartMs = await firstServed(m.endpoint, keyOf(o.keys - 1, o.keySize), since);
    await ready;
    const rssMiBAfterRestart = rssMiB(m.pid);
    say(`kill -9 and restart: first Range answered after ${(restartMs / 1000).toFixed(2)} s; RSS then ${rssMiBAfterRestart} MiB`);
    return { server, round, rssMiB100k, rssMiBLarge, dataDirMiBLarge, loadKeysPerSec, put10k, range10k, putLarge, rangeLarge, restartMs, rssMiBAfterRestart };
  } finally {
    await m.stop().catch(() => undefined);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runScale(o: ScaleOptions): Promise<ScaleRound[]> {
  const out: ScaleRound[] = [];
  for (let round = 1; round <= o.rounds; round++) {
    for (const server of o.against) out.push(await oneRound(o, server, round));
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** The markdown table: medians per server, and the median of per-round cairn/etcd ratios. */
export function scaleTable(o: ScaleOptions, rounds: ScaleRound[]): string {
  const rows: Array<[string, (r: ScaleRound) => number, (n: number) => string]> = [
    [`RSS at ${fmt(MID_KEYS)} keys (MiB)`, (r) => r.rssMiB100k, fmt],
    [`RSS at ${fmt(o.keys)} keys (MiB)`, (r) => r.rssMiBLarge, fmt],
    [`data dir at ${fmt(o.keys)} keys (MiB)`, (r) => r.dataDirMiBLarge, fmt],
    [`restart after kill -9 at ${fmt(o.keys)} keys, to first served Range (s)`, (r) => r.restartMs / 1000, (n) => n.toFixed(2)],
    [`RSS after that restart (MiB)`, (r) => r.rssMiBAfterRestart, fmt],
    [`load rate, Txn of ${LOAD_OPS_PER_TXN} puts (keys/s)`, (r) => r.loadKeysPerSec, fmt],
    [`put ops/s over ${fmt(SMALL_KEYS)} keys`, (r) => r.put10k.opsPerSec, fmt],
    [`put ops/s over ${fmt(o.keys)} keys`, (r) => r.putLarge.opsPerSec, fmt],
    [`range ops/s over ${fmt(SMALL_KEYS)} keys`, (r) => r.range10k.opsPerSec, fmt],
    [`range ops/s over ${fmt(o.keys)} keys`, (r) => r.rangeLarge.opsPerSec, fmt],
  ];
  const of = (s: ServerKind): ScaleRound[] => rounds.filter((r) => r.server === s);
  const c = of('cairn');
  const e = of('etcd');
  const lines = ['| measure | cairn | etcd | cairn/etcd |', '| --- | ---: | ---: | ---: |'];
  for (const [name, get, f] of rows) {
    const cv = c.length > 0 ? f(median(c.map(get))) : '-';
    const ev = e.length > 0 ? f(median(e.map(get))) : '-';
    const pairs: number[] = [];
    for (let i = 0; i < Math.min(c.length, e.length); i++) if (get(e[i]) > 0) pairs.push(get(c[i]) / get(e[i]));
    lines.push(`| ${name} | ${cv} | ${ev} | ${pairs.length > 0 ? `${median(pairs).toFixed(2)}×` : '-'} |`);
  }
  return lines.join('\n');
}

export function scaleDetails(rounds: ScaleRound[]): string {
  return rounds
    .map(
      (r) =>
        `- round ${r.round} ${r.server}: RSS ${r.rssMiB100k} / ${r.rssMiBLarge} MiB, restart ${(r.restartMs / 1000).toFixed(2)} s, ` +
        `put ${fmt(r.put10k.opsPerSec)} -> ${fmt(r.putLarge.opsPerSec)} ops/s (p99 ${r.put10k.latencyMs.p99.toFixed(1)} -> ${r.putLarge.latencyMs.p99.toFixed(1)} ms), ` +
        `range ${fmt(r.range10k.opsPerSec)} -> ${fmt(r.rangeLarge.opsPerSec)} ops/s; CPU other processes during put at the large end ` +
        `${Math.max(0, r.putLarge.machineCpuCores - r.putLarge.loadgenCpuCores - (r.putLarge.serverCpuCores ?? 0)).toFixed(2)} cores`,
    )
    .join('\n');
}
