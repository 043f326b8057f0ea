/**
 * `npm run bench`: every workload against a fresh single-member cairn and a fresh
 * single-member etcd on this machine, alternating round by round (cairn, etcd, cairn,
 * etcd, ...), quoting the median round and the median of the per-round cairn/etcd
 * ratios. Prints a markdown table and writes the full results to
 * bench/results/<timestamp>.json.
 *
 *   npm run bench -- --duration 10 --rounds 3
 *   npm run bench -- --members 3 --duration 8 --rounds 3     # 3-member clusters of both
 *   npm run bench -- --against etcd --workloads put --workers 2
 *   npm run bench -- --scale --rounds 3                      # memory, restart time, 10k vs 1M keys
 *   npm run bench -- --help
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { helpText, intFlag, listFlag, numFlag, parseArgs, type FlagSpecs, type ParsedArgs } from './lib/args';
import { profilesIn, summarizeProfile } from './lib/cpuprofile';
import { gitDescribe, machineCpuMs, machineInfo, type MachineInfo } from './lib/machine';
import { startCluster, type BenchCluster } from './lib/cluster';
import { cairnBin, cleanupAll, makeTempDir, repoRoot, startCairn, startEtcd, type ServerKind, type ServerProc } from './lib/procs';
import { runScale, scaleDetails, scaleTable } from './scale';
import { LOAD_DEFAULTS, runLoad, STREAM_DEFAULTS, TRANSPORTS, type LoadResult, type StreamOptions, type TransportKind } from './loadgen';
import {
  checkKeyOptions,
  getWorkloadInfo,
  KEY_OPTIONS_DEFAULT,
  MAX_TXN_OPS,
  PREFIX_RANGE_KEYS,
  type KeyOptions,
  type KeyOrder,
  type WorkloadInfo as Workload,
} from './loadgen/workloads';

/**
 * Every workload, in the order a default run takes them: the writers each on fresh
 * members, then the three reads on one preloaded key space, then the streaming ones.
 */
const ALL_WORKLOADS = ['put', 'txn-put', 'range', 'range-serializable', 'range-prefix', 'watch-fanout', 'lease-keepalive', 'config-mix'];

const FLAGS: FlagSpecs = {
  against: { help: 'servers to measure, comma-separated: cairn, etcd', def: 'cairn,etcd' },
  workloads: {
    help: `workloads, comma-separated (${ALL_WORKLOADS.join(', ')})`,
    def: 'all of them',
  },
  duration: { help: 'measured seconds per run', def: '10' },
  warmup: { help: 'warm-up seconds per run (not counted)', def: '1' },
  rounds: { help: 'runs per workload and server; the median round is quoted', def: '3' },
  workers: { help: 'load generator worker threads', def: String(LOAD_DEFAULTS.workers) },
  clients: {
    help: 'concurrent calls in flight; a comma list runs every workload at each (--members 3 without --workloads/--clients: put at 1,64,256, the rest at 64)',
    def: String(LOAD_DEFAULTS.clients),
  },
  conns: { help: 'HTTP/2 connections (spread over the members round-robin)', def: `${LOAD_DEFAULTS.conns}; 6 with --members 3` },
  members: { help: 'members per server: 1, or 3 (a 3-member cluster of each, on loopback)', def: '1' },
  target: { help: 'with --members 3: spread (connection i to member i mod 3, followers first) or leader (all to the leader)', def: 'spread' },
  'heartbeat-interval': { help: '--heartbeat-interval for both servers, ms', def: '100' },
  'election-timeout': { help: '--election-timeout for both servers, ms', def: '1000' },
  transport: { help: 'h2 (hand-framed gRPC on node:http2) or grpc-js', def: LOAD_DEFAULTS.transport },
  'key-size': { help: 'key bytes', def: String(KEY_OPTIONS_DEFAULT.keySize) },
  'val-size': { help: 'value bytes', def: String(KEY_OPTIONS_DEFAULT.valSize) },
  'key-space': { help: 'distinct keys (preloaded for range workloads)', def: String(KEY_OPTIONS_DEFAULT.keySpace) },
  'key-order': { help: 'seq or random', def: KEY_OPTIONS_DEFAULT.keyOrder },
  'txn-ops': { help: `txn-put: puts per Txn (1..${MAX_TXN_OPS}, distinct keys)`, def: '1' },
  watchers: { help: 'watch-fanout: watch streams (one watcher each, same prefix)', def: String(STREAM_DEFAULTS.watchers) },
  'watch-rate': { help: 'watch-fanout: writer puts/s (one in flight; 0 = back-to-back)', def: String(STREAM_DEFAULTS.watchRate) },
  'mix-keys': { help: 'config-mix: config keys (read by --clients readers, updated by the writer)', def: String(STREAM_DEFAULTS.mixKeys) },
  'mix-watchers': { help: 'config-mix: watchers on the config prefix', def: String(STREAM_DEFAULTS.mixWatchers) },
  'mix-write-rate': { help: 'config-mix: writer puts/s (open loop)', def: String(STREAM_DEFAULTS.mixWriteRate) },
  'mix-serializable': { help: 'config-mix: fraction of reads that are serializable (the rest linearizable)', def: String(STREAM_DEFAULTS.mixSerializable) },
  'quiet-cpu': { help: 'before each run, wait until other processes use less than this many cores', def: '0.3' },
  'quiet-wait': { help: 'longest wait for that, in seconds (then run anyway and report it)', def: '30' },
  scale: { bool: true, help: 'memory and scale instead of the workloads: RSS at 100k and --scale-keys keys, restart after kill -9, put/range at 10k vs --scale-keys keys (bench/scale.ts)' },
  'scale-keys': { help: 'with --scale: keys at the large end', def: '1000000' },
  'cpu-prof': { bool: true, help: 'run cairn under node --cpu-prof and print where it spends CPU' },
  out: { help: 'results JSON path', def: 'bench/results/<timestamp>.json' },
  help: { bool: true, help: 'show this help' },
};

type TargetMode = 'spread' | 'leader';

/** One row of the table: a workload at a client count. */
interface Case {
  w: Workload;
  clients: number;
}

interface Options {
  against: ServerKind[];
  workloads: Workload[];
  cases: Case[];
  members: 1 | 3;
  targetMode: TargetMode;
  heartbeatMs: number;
  electionMs: number;
  durationMs: number;
  warmupMs: number;
  rounds: number;
  workers: number;
  clients: number;
  conns: number;
  transport: TransportKind;
  keys: KeyOptions;
  stream: StreamOptions;
  quietCpuCores: number;
  quietWaitMs: number;
  cpuProf: boolean;
  out: string;
}

/** Pause between runs so one server's background flushing does not overlap the next run. */
const SETTLE_MS = 1_000;
const QUIET_SAMPLE_MS = 500;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The machine is shared: wait (up to quietWaitMs) until processes other than ours, which
 * are idle between runs, use less than quietCpuCores. Returns the last sampled load.
 */
async function waitQuiet(opts: Options): Promise<{ otherCores: number; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const a = machineCpuMs().busyMs;
    await sleep(QUIET_SAMPLE_MS);
    const otherCores = (machineCpuMs().busyMs - a) / QUIET_SAMPLE_MS;
    const waitedMs = Date.now() - t0;
    if (!(otherCores >= opts.quietCpuCores) || waitedMs >= opts.quietWaitMs) {
      return { otherCores: Math.round(otherCores * 100) / 100, waitedMs };
    }
  }
}

function options(args: ParsedArgs, stamp: string): Options {
  const against = listFlag(args, 'against', ['cairn', 'etcd']);
  for (const a of against) if (a !== 'cairn' && a !== 'etcd') throw new Error(`--against: unknown server ${JSON.stringify(a)}`);
  const keyOrder = args.values.get('key-order') ?? KEY_OPTIONS_DEFAULT.keyOrder;
  if (keyOrder !== 'seq' && keyOrder !== 'random') throw new Error('--key-order must be seq or random');
  const keys: KeyOptions = {
    keySize: intFlag(args, 'key-size', KEY_OPTIONS_DEFAULT.keySize, 1),
    valSize: intFlag(args, 'val-size', KEY_OPTIONS_DEFAULT.valSize, 0),
    keySpace: intFlag(args, 'key-space', KEY_OPTIONS_DEFAULT.keySpace, 1),
    keyOrder: keyOrder as KeyOrder,
    txnOps: intFlag(args, 'txn-ops', 1, 1),
  };
  checkKeyOptions(keys);
  const transport = args.values.get('transport') ?? LOAD_DEFAULTS.transport;
  if (!(TRANSPORTS as readonly string[]).includes(transport)) throw new Error(`--transport must be one of ${TRANSPORTS.join(', ')}`);
  const members = intFlag(args, 'members', 1, 1);
  if (members !== 1 && members !== 3) throw new Error('--members must be 1 or 3');
  const targetMode = args.values.get('target') ?? 'spread';
  if (targetMode !== 'spread' && targetMode !== 'leader') throw new Error('--target must be spread or leader');
  if (members === 1 && args.values.has('target')) throw new Error('--target needs --members 3');
  const workloads = listFlag(args, 'workloads', ALL_WORKLOADS).map(getWorkloadInfo);
  if (workloads.some((w) => w.name === 'range-prefix') && (keys.keySpace % PREFIX_RANGE_KEYS !== 0 || keys.keySize < 3)) {
    throw new Error(`range-prefix needs --key-space a multiple of ${PREFIX_RANGE_KEYS} and --key-size >= 3 (groups of ${PREFIX_RANGE_KEYS} keys sharing a prefix)`);
  }
  const mixSerializable = numFlag(args, 'mix-serializable', STREAM_DEFAULTS.mixSerializable, 0);
  if (mixSerializable > 1) throw new Error('--mix-serializable is a fraction in [0, 1]');
  const clientList = listFlag(args, 'clients', [String(LOAD_DEFAULTS.clients)]).map((c) => {
    const n = Number(c);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--clients: ${JSON.stringify(c)} is not an integer >= 1`);
    return n;
  });
  let cases: Case[];
  if (members === 3 && !args.values.has('workloads') && !args.values.has('clients')) {
    // The cluster matrix: write throughput/latency across concurrency, every other workload at 64.
    cases = [
      ...[1, 64, 256].map((clients) => ({ w: getWorkloadInfo('put'), clients })),
      ...ALL_WORKLOADS.filter((n) => n !== 'put').map((n) => ({ w: getWorkloadInfo(n), clients: 64 })),
    ];
  } else {
    cases = workloads.flatMap((w) => clientList.map((clients) => ({ w, clients })));
  }
  return {
    against: [...new Set(against)] as ServerKind[],
    workloads: [...new Set(cases.map((c) => c.w))],
    cases,
    members,
    targetMode,
    heartbeatMs: intFlag(args, 'heartbeat-interval', 100, 1),
    electionMs: intFlag(args, 'election-timeout', 1000, 1),
    durationMs: numFlag(args, 'duration', 10, 0.1) * 1000,
    warmupMs: numFlag(args, 'warmup', 1, 0) * 1000,
    rounds: intFlag(args, 'rounds', 3, 1),
    workers: intFlag(args, 'workers', LOAD_DEFAULTS.workers, 1),
    clients: clientList[0],
    conns: intFlag(args, 'conns', members === 3 ? 6 : LOAD_DEFAULTS.conns, 1),
    transport: transport as TransportKind,
    keys,
    stream: {
      watchers: intFlag(args, 'watchers', STREAM_DEFAULTS.watchers, 1),
      watchRate: numFlag(args, 'watch-rate', STREAM_DEFAULTS.watchRate, 0),
      mixKeys: intFlag(args, 'mix-keys', STREAM_DEFAULTS.mixKeys, 1),
      mixWatchers: intFlag(args, 'mix-watchers', STREAM_DEFAULTS.mixWatchers, 1),
      mixWriteRate: numFlag(args, 'mix-write-rate', STREAM_DEFAULTS.mixWriteRate, 0.001),
      mixSerializable: numFlag(args, 'mix-serializable', STREAM_DEFAULTS.mixSerializable, 0),
    },
    quietCpuCores: numFlag(args, 'quiet-cpu', 0.3, 0),
    quietWaitMs: numFlag(args, 'quiet-wait', 30, 0) * 1000,
    cpuProf: args.bools.has('cpu-prof'),
    out: args.values.get('out') ?? path.join(repoRoot(), 'bench', 'results', `${stamp}.json`),
  };
}

// ---------------------------------------------------------------------------------
// Servers: each target is one member or a 3-member cluster whose state decides whether a
// workload may run on it.

type TargetState = 'none' | 'fresh' | 'preloaded' | 'dirty';

/** Where the load goes, and who leads, at the start of a round. */
interface Placement {
  endpoints: string[];
  /** Member names in endpoint order. */
  names: string[];
  /** Leader's member name and the highest raft term seen (cluster only). */
  leader: string | null;
  term: number;
}

/**
 * A private copy of the built dist/src, so that another engineer's `npm run build` during
 * the benchmark cannot start members of one run on different code.
 */
function snapshotDist(): { bin: string; env: NodeJS.ProcessEnv } {
  const bin = cairnBin();
  const srcDir = path.dirname(path.dirname(bin)); // dist/src
  const dest = makeTempDir('bench-cairn-dist-');
  fs.cpSync(srcDir, path.join(dest, 'src'), { recursive: true });
  return { bin: path.join(dest, 'src', path.relative(srcDir, bin)), env: { NODE_PATH: path.join(repoRoot(), 'node_modules') } };
}

class Target {
  members: ServerProc[] = [];
  cluster: BenchCluster | null = null;
  state: TargetState = 'none';
  readonly profDir: string | null;
  private dist: { bin: string; env: NodeJS.ProcessEnv } | null = null;

  constructor(
    readonly kind: ServerKind,
    private readonly opts: Options,
    profRoot: string,
  ) {
    this.profDir = kind === 'cairn' && opts.cpuProf ? profRoot : null;
  }

  /** Stop the current member(s) (if any) and start fresh ones on new data dirs. */
  async startFresh(): Promise<void> {
    await this.stop();
    // Data dirs on the same disk for both servers (os.tmpdir()), with each server's defaults (fsync on).
    const extraArgs = ['--heartbeat-interval', String(this.opts.heartbeatMs), '--election-timeout', String(this.opts.electionMs)];
    if (this.kind === 'cairn' && this.dist === null && process.env.CAIRN_BIN === undefined) this.dist = snapshotDist();
    // One profile per process (node names it with the pid).
    // CAIRN_NODE_ARGS adds node flags for experiments (e.g. V8 heap sizes).
    const extraNode = (process.env.CAIRN_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const nodeArgs = (): string[] => [...(this.profDir !== null ? ['--cpu-prof', `--cpu-prof-dir=${this.profDir}`] : []), ...extraNode];
    if (this.opts.members === 3) {
      const t0 = Date.now();
      this.cluster = await startCluster(this.kind, {
        size: 3,
        heartbeatMs: this.opts.heartbeatMs,
        electionMs: this.opts.electionMs,
        ...(this.kind === 'cairn' ? { bin: this.dist?.bin, env: this.dist?.env, nodeArgs } : {}),
      });
      this.members = this.cluster.members;
      log(`  started 3-member ${this.kind} cluster in ${((Date.now() - t0) / 1000).toFixed(1)} s (pids ${this.members.map((m) => m.pid).join(', ')})`);
    } else {
      const dataDir = makeTempDir(`bench-${this.kind}-`);
      if (this.kind === 'etcd') {
        this.members = [await startEtcd({ dataDir, extraArgs })];
      } else {
        this.members = [await startCairn({ dataDir, extraArgs, nodeArgs: nodeArgs(), bin: this.dist?.bin, env: this.dist?.env })];
      }
    }
    this.state = 'fresh';
  }

  async stop(): Promise<void> {
    const ms = this.members;
    this.members = [];
    this.cluster = null;
    this.state = 'none';
    await Promise.all(ms.map((m) => m.stop()));
    for (const m of ms) fs.rmSync(m.dataDir, { recursive: true, force: true });
  }

  /** Bring the member(s) into the state the workload needs. */
  async prepare(w: Workload): Promise<void> {
    if (w.needs === 'fresh' && this.state !== 'fresh') await this.startFresh();
    if (w.needs === 'preloaded') {
      if (this.state === 'none' || this.state === 'dirty') await this.startFresh();
      if (this.state === 'fresh') await this.preload();
    }
  }

  /**
   * Endpoints for the next run. Cluster: wait for an agreed leader; `spread` lists the
   * followers first, then the leader (so with conns a multiple of 3 client j talks to
   * member j mod 3, and a single client goes through a follower); `leader` lists only it.
   */
  async placement(): Promise<Placement> {
    const ms = this.need();
    if (this.cluster === null) return { endpoints: [ms[0].endpoint], names: [ms[0].name], leader: null, term: 0 };
    const { index, statuses } = await this.cluster.waitLeader(30_000);
    const leader = ms[index];
    const order = this.opts.targetMode === 'leader' ? [leader] : [...ms.filter((_, i) => i !== index), leader];
    return {
      endpoints: order.map((m) => m.endpoint),
      names: order.map((m) => m.name),
      leader: leader.name,
      term: Math.max(...statuses.map((s) => s.raftTerm)),
    };
  }

  private async preload(): Promise<void> {
    const place = await this.placement();
    const t0 = Date.now();
    const r = await runLoad({
      endpoint: place.endpoints,
      workload: 'put',
      keys: { ...this.opts.keys, keyOrder: 'seq' },
      workers: this.opts.workers,
      clients: 64,
      conns: this.opts.conns,
      transport: this.opts.transport,
      count: this.opts.keys.keySpace,
    });
    if (r.errorsTotal > 0 || r.ops !== this.opts.keys.keySpace) {
      throw new Error(
        `${this.kind}: preload of ${this.opts.keys.keySpace} keys stored ${r.ops} with ${r.errorsTotal} errors: ` +
          `${JSON.stringify(r.errorsByCode)} e.g. ${r.errorSamples.slice(0, 3).join('; ')}\n${this.describe()}`,
      );
    }
    log(`  preloaded ${r.ops} keys into ${this.kind} in ${((Date.now() - t0) / 1000).toFixed(1)} s (${r.opsPerSec} puts/s)`);
    this.state = 'preloaded';
  }

  /** Whether the members still run, and the tail of their output: context for an error. */
  describe(): string {
    if (this.members.length === 0) return `${this.kind}: not started`;
    return this.members
      .map((s) => {
        const status = s.running ? `running (pid ${s.pid})` : `exited ${JSON.stringify(s.exitStatus())}`;
        return `${this.kind} ${s.name} ${status}; last output:\n${s.output().slice(-3000)}`;
      })
      .join('\n');
  }

  need(): ServerProc[] {
    if (this.members.length === 0) throw new Error(`${this.kind} is not running`);
    for (const m of this.members) {
      if (!m.running) {
        const tail = m.output().slice(-4000);
        throw new Error(`${this.kind} member ${m.name} is not running${tail !== '' ? `; last output:\n${tail}` : ''}`);
      }
    }
    return this.members;
  }
}

// ---------------------------------------------------------------------------------
// Reporting

interface Cell {
  workload: string;
  clients: number;
  target: ServerKind;
  rounds: LoadResult[];
  /** Per round (cluster only): leader at the start, and whether the raft term changed during the round. */
  leaders: Array<string | null>;
  termChanged: boolean[];
  /** The round with the median ops/s (the lower middle one for an even count). */
  median: LoadResult;
}

function medianRound(rounds: LoadResult[]): LoadResult {
  const sorted = [...rounds].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

/** One figure pair of a table row: the main one of a run (ops/s, latency) or one of its extra rows. */
interface Measure {
  label: string;
  main: boolean;
  ops(r: LoadResult): number;
  p50(r: LoadResult): number;
  p99(r: LoadResult): number;
}

function measuresOf(w: Workload): Measure[] {
  const extra = (r: LoadResult, k: string): number => r.extra?.[k] ?? NaN;
  return [
    { label: w.mainLabel ?? w.name, main: true, ops: (r) => r.opsPerSec, p50: (r) => r.latencyMs.p50, p99: (r) => r.latencyMs.p99 },
    ...(w.rows ?? []).map((x) => ({
      label: x.label,
      main: false,
      ops: (r: LoadResult) => extra(r, x.ops),
      p50: (r: LoadResult) => extra(r, x.p50),
      p99: (r: LoadResult) => extra(r, x.p99),
    })),
  ];
}

/**
 * cairn/etcd of one figure in each round: the two runs of a round are back to back, so
 * they saw about the same load from the rest of the machine. The table quotes their
 * median, which a burst of outside load during one run moves much less than a ratio of
 * two medians.
 */
function pairRatios(c: Cell | undefined, e: Cell | undefined, f: (r: LoadResult) => number = (r) => r.opsPerSec): number[] {
  if (c === undefined || e === undefined) return [];
  const out: number[] = [];
  for (let i = 0; i < Math.min(c.rounds.length, e.rounds.length); i++) {
    const x = f(c.rounds[i]);
    const y = f(e.rounds[i]);
    if (Number.isFinite(x) && Number.isFinite(y) && y > 0) out.push(x / y);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function log(line: string): void {
  process.stderr.write(line + '\n');
}

function fmtOps(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtMs(x: number): string {
  if (!Number.isFinite(x)) return '-';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function fmtRatio(pr: number[]): string {
  return pr.length > 0 ? `${median(pr).toFixed(2)}×` : '-';
}

function table(opts: Options, cells: Cell[]): string {
  const find = (cs: Case, t: ServerKind): Cell | undefined =>
    cells.find((c) => c.workload === cs.w.name && c.clients === cs.clients && c.target === t);
  const lines = [
    '| workload | clients | cairn ops/s | etcd ops/s | ratio | cairn p50/p99 ms | etcd p50/p99 ms | p99 ratio | errors cairn/etcd |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const cs of opts.cases) {
    const cc = find(cs, 'cairn');
    const ec = find(cs, 'etcd');
    const errs = (r: Cell | undefined): string => (r === undefined ? '-' : String(r.rounds.reduce((s, x) => s + x.errorsTotal, 0)));
    for (const m of measuresOf(cs.w)) {
      const c = cc?.median;
      const e = ec?.median;
      const ops = (r: LoadResult | undefined): string => (r === undefined || !Number.isFinite(m.ops(r)) ? '-' : fmtOps(m.ops(r)));
      const lat = (r: LoadResult | undefined): string => (r === undefined ? '-' : `${fmtMs(m.p50(r))} / ${fmtMs(m.p99(r))}`);
      lines.push(
        `| ${m.label} | ${m.main ? cs.clients : ''} | ${ops(c)} | ${ops(e)} | ${fmtRatio(pairRatios(cc, ec, m.ops))} | ` +
          `${lat(c)} | ${lat(e)} | ${fmtRatio(pairRatios(cc, ec, m.p99))} | ${m.main ? `${errs(cc)}/${errs(ec)}` : ''} |`,
      );
    }
  }
  return lines.join('\n');
}

function details(opts: Options, cells: Cell[]): string {
  const lines: string[] = [];
  for (const c of cells) {
    if (c.target !== 'cairn') continue;
    const e = cells.find((x) => x.target === 'etcd' && x.workload === c.workload && x.clients === c.clients);
    const w = opts.cases.find((cs) => cs.w.name === c.workload)?.w;
    if (w === undefined || e === undefined) continue;
    for (const m of measuresOf(w)) {
      const pr = pairRatios(c, e, m.ops);
      const p99 = pairRatios(c, e, m.p99);
      if (pr.length === 0) continue;
      lines.push(
        `- ${m.label} x${c.clients}: cairn/etcd per round: ops/s ${pr.map((r) => `${r.toFixed(2)}×`).join(', ')} (median ${median(pr).toFixed(2)}×); ` +
          `p99 ${p99.map((r) => `${r.toFixed(2)}×`).join(', ')}${p99.length > 0 ? ` (median ${median(p99).toFixed(2)}×)` : ''}`,
      );
    }
  }
  for (const c of cells) {
    const ops = c.rounds.map((r) => fmtOps(r.opsPerSec)).join(', ');
    const m = c.median;
    const each = m.serverCpuCoresEach !== undefined ? ` (${m.serverCpuCoresEach.join(' + ')})` : '';
    const mi = c.rounds.indexOf(m);
    const lead =
      c.leaders.some((l) => l !== null)
        ? `; leader ${c.leaders[mi]} in the median round (servers CPU in member order a, b, c)` +
          (c.termChanged.some((x) => x) ? `; **raft term changed during round(s) ${c.termChanged.flatMap((x, i) => (x ? [i + 1] : [])).join(', ')}**` : '')
        : '';
    lines.push(
      `- ${c.workload} x${c.clients} on ${c.target}: rounds ${ops} ops/s; median round p90 ${fmtMs(m.latencyMs.p90)} ms, max ${fmtMs(m.latencyMs.max)} ms; ` +
        `CPU (cores) server ${m.serverCpuCores ?? '?'}${each}, load generator ${m.loadgenCpuCores}, ` +
        `other processes ${otherCpu(m)}${waitText(m, ' + ')}${lead}${m.extra !== undefined ? `; ${extraLine(m.extra)}` : ''}`,
    );
  }
  return lines.join('\n');
}

/** The server threads' run-queue time (runnable, no CPU free), as cores' worth, when /proc has it. */
function waitText(r: LoadResult, sep: string): string {
  const w = r.serverRunQueueWaitEach;
  if (w === undefined) return '';
  const sum = Math.round(w.reduce((a, b) => a + b, 0) * 100) / 100;
  return `; server threads waiting for a CPU (cores) ${sum}${w.length > 1 ? ` (${w.join(sep)})` : ''}`;
}

function extraLine(x: Record<string, number>): string {
  return Object.entries(x)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v.toLocaleString('en-US') : v}`)
    .join(', ');
}

/** Machine CPU not used by the server or the load generator (other users of the shared cores). */
function otherCpu(r: LoadResult): string {
  const other = r.machineCpuCores - r.loadgenCpuCores - (r.serverCpuCores ?? 0);
  return Number.isFinite(other) ? Math.max(0, other).toFixed(2) : '?';
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

function machineLine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memGiB} GiB RAM, ${m.kernel}, Node ${m.node}, etcd ${m.etcdVersion}, data dirs in ${m.tmpdir}`;
}

function printErrors(cell: Cell, target: Target): void {
  for (const [i, r] of cell.rounds.entries()) {
    if (r.errorsTotal === 0 && r.unfinished === 0) continue;
    log(
      `  !! ${cell.workload} on ${cell.target} round ${i + 1}: ${r.errorsTotal} errors ${JSON.stringify(r.errorsByCode)}, ` +
        `${r.unfinished} unfinished; e.g. ${r.errorSamples.slice(0, 3).join(' | ')}`,
    );
    log(target.describe());
  }
}

// ---------------------------------------------------------------------------------

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv, FLAGS);
  if (args.bools.has('help')) {
    process.stdout.write(helpText('usage: npm run bench -- [flags]', FLAGS) + '\n');
    return 0;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const opts = options(args, stamp);
  const machine = machineInfo();
  const command = `npm run bench -- ${argv.map(shellQuote).join(' ')}`.trimEnd();
  const profRoot = path.join(repoRoot(), 'bench', 'results', `prof-${stamp}`);
  const commit = gitDescribe(repoRoot());
  log(`machine: ${machineLine(machine)}`);
  log(`cairn: ${commit}`);
  log(`command: ${command}`);

  if (args.bools.has('scale')) return scaleMain(opts, intFlag(args, 'scale-keys', 1_000_000, 100_000), { machine, command, commit });

  if (opts.against.length === 1) {
    log(`(measuring ${opts.against[0]} only: no cairn/etcd ratios; the comparison is the default, --against cairn,etcd)`);
  }
  const targets = opts.against.map((k) => new Target(k, opts, profRoot));
  const cells: Cell[] = [];
  const startedAt = new Date().toISOString();
  try {
    for (const cs of opts.cases) {
      const w = cs.w;
      log(`workload ${w.name} x${cs.clients} clients${opts.members === 3 ? ` on 3-member clusters (target ${opts.targetMode})` : ''}: ${w.description}`);
      for (const t of targets) await t.prepare(w);
      const perTarget = new Map<ServerKind, LoadResult[]>(targets.map((t) => [t.kind, []]));
      const leaders = new Map<ServerKind, Array<string | null>>(targets.map((t) => [t.kind, []]));
      const termChanged = new Map<ServerKind, boolean[]>(targets.map((t) => [t.kind, []]));
      for (let round = 1; round <= opts.rounds; round++) {
        for (const t of targets) {
          await sleep(SETTLE_MS);
          const quiet = await waitQuiet(opts);
          if (quiet.otherCores >= opts.quietCpuCores) {
            log(`  (other processes still use ${quiet.otherCores} cores after ${Math.round(quiet.waitedMs / 1000)} s; running anyway)`);
          }
          const members = t.need();
          const place = await t.placement();
          const r = await runLoad({
            endpoint: place.endpoints,
            workload: w.name,
            keys: opts.keys,
            workers: opts.workers,
            clients: cs.clients,
            conns: opts.conns,
            transport: opts.transport,
            warmupMs: opts.warmupMs,
            durationMs: opts.durationMs,
            serverPids: members.map((m) => m.pid),
            stream: opts.stream,
          });
          t.need(); // the servers must have survived the run
          let changed = false;
          if (place.leader !== null) {
            const after = await t.placement();
            changed = after.term !== place.term || after.leader !== place.leader;
            if (changed) log(`  !! ${t.kind}: leader ${place.leader} (term ${place.term}) -> ${after.leader} (term ${after.term}) during the round`);
          }
          perTarget.get(t.kind)?.push(r);
          leaders.get(t.kind)?.push(place.leader);
          termChanged.get(t.kind)?.push(changed);
          log(
            `  round ${round} ${t.kind.padEnd(5)} ${fmtOps(r.opsPerSec).padStart(7)} ops/s  p50 ${fmtMs(r.latencyMs.p50)} ms  ` +
              `p99 ${fmtMs(r.latencyMs.p99)} ms  errors ${r.errorsTotal}  cpu srv ${r.serverCpuCores ?? '?'}` +
              `${r.serverCpuCoresEach !== undefined ? ` (${r.serverCpuCoresEach.join('+')})` : ''} gen ${r.loadgenCpuCores} other ${otherCpu(r)}` +
              (r.serverRunQueueWaitEach !== undefined ? ` wait ${r.serverRunQueueWaitEach.join('+')}` : '') +
              (place.leader !== null ? `  leader ${place.leader}` : '') +
              (r.extra !== undefined ? `\n      ${extraLine(r.extra)}` : ''),
          );
        }
      }
      for (const t of targets) {
        if (w.writes) t.state = 'dirty';
        const rounds = perTarget.get(t.kind) ?? [];
        const cell: Cell = {
          workload: w.name,
          clients: cs.clients,
          target: t.kind,
          rounds,
          leaders: leaders.get(t.kind) ?? [],
          termChanged: termChanged.get(t.kind) ?? [],
          median: medianRound(rounds),
        };
        cells.push(cell);
        printErrors(cell, t);
      }
    }
  } finally {
    for (const t of targets) {
      try {
        await t.stop();
      } catch (e) {
        log(`stopping ${t.kind}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    await cleanupAll();
  }

  const md = table(opts, cells);
  const report = [
    '',
    `machine: ${machineLine(machine)}`,
    `command: ${command}`,
    `cairn: commit ${commit}`,
    `servers: ${opts.members === 1 ? 'one member each' : `3-member clusters on loopback, load ${opts.targetMode === 'spread' ? 'spread over all members (connection i to member i mod 3, followers first)' : 'on the leader only'}`}; ` +
      `--heartbeat-interval ${opts.heartbeatMs} --election-timeout ${opts.electionMs} for both`,
    `load: ${[...new Set(opts.cases.map((c) => c.clients))].join('/')} clients over ${opts.conns} HTTP/2 connections (${opts.transport}), ${opts.workers} worker thread(s); ` +
      `${opts.durationMs / 1000} s measured after ${opts.warmupMs / 1000} s warm-up; median of ${opts.rounds} rounds (ratio: median of per-round cairn/etcd pairs); ` +
      `keys ${opts.keys.keySize} B (${opts.keys.keyOrder} over ${opts.keys.keySpace}), values ${opts.keys.valSize} B`,
    ...(opts.workloads.some((w) => w.streaming)
      ? [
          `streaming: one load-generator thread; watch-fanout ${opts.stream.watchers} watchers over ${opts.conns} connections, writer at ` +
            `${opts.stream.watchRate > 0 ? `${opts.stream.watchRate} puts/s` : 'back-to-back'} (16 B values), ops/s = events delivered/s ` +
            `over all watchers, latency = put sent -> event received; lease-keepalive ${opts.clients} leases/streams, ops/s = keep-alives/s, latency = round trip; ` +
            `config-mix ${opts.clients} readers over ${opts.conns} connections of ${opts.stream.mixKeys} config keys (${opts.stream.mixSerializable * 100} % serializable), ` +
            `${opts.stream.mixWatchers} watchers on the config prefix, writer at ${opts.stream.mixWriteRate} puts/s (${opts.keys.valSize} B values), ` +
            'rows: reads (ops/s, latency), writes (puts/s, put latency), watch delivery (events/s, put sent -> event received)',
        ]
      : []),
    ...(opts.workloads.some((w) => w.name === 'txn-put') ? [`txn-put: ${opts.keys.txnOps ?? 1} put(s) per Txn`] : []),
    '',
    md,
    '',
    details(opts, cells),
    '',
  ].join('\n');
  process.stdout.write(report);

  let profiles: { file: string; summary: ReturnType<typeof summarizeProfile> }[] = [];
  if (opts.cpuProf) {
    profiles = profilesIn(profRoot).map((file) => ({ file, summary: summarizeProfile(file) }));
    for (const p of profiles) {
      process.stdout.write(`\ncairn CPU profile ${path.relative(repoRoot(), p.file)} (${p.summary.totalMs} ms), top self time:\n`);
      for (const e of p.summary.top) process.stdout.write(`  ${String(e.pct).padStart(5)} %  ${e.fn}  ${e.where}\n`);
    }
  }

  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  const json = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command,
    argv,
    commit,
    machine,
    options: { ...opts, workloads: opts.workloads.map((w) => w.name), cases: opts.cases.map((c) => ({ workload: c.w.name, clients: c.clients })) },
    table: md,
    results: cells,
    profiles,
  };
  fs.writeFileSync(opts.out, JSON.stringify(json, (_k, v: unknown) => (v instanceof Float64Array ? undefined : v), 2) + '\n');
  log(`results: ${path.relative(process.cwd(), opts.out)}`);
  const errors = cells.reduce((s, c) => s + c.rounds.reduce((t, r) => t + r.errorsTotal + r.unfinished, 0), 0);
  return errors > 0 ? 1 : 0;
}

async function scaleMain(opts: Options, keys: number, run: { machine: MachineInfo; command: string; commit: string }): Promise<number> {
  let dist: { bin: string; env: NodeJS.ProcessEnv } | null = null;
  const so = {
    against: opts.against,
    rounds: opts.rounds,
    keys,
    keySize: opts.keys.keySize,
    valSize: opts.keys.valSize,
    durationMs: opts.durationMs,
    warmupMs: opts.warmupMs,
    clients: opts.clients,
    conns: opts.conns,
    transport: opts.transport,
    heartbeatMs: opts.heartbeatMs,
    electionMs: opts.electionMs,
    cairnDist: () => {
      if (dist === null && process.env.CAIRN_BIN === undefined) dist = snapshotDist();
      return dist;
    },
    log,
  };
  const startedAt = new Date().toISOString();
  let rounds;
  try {
    rounds = await runScale(so);
  } finally {
    await cleanupAll();
  }
  const md = scaleTable(so, rounds);
  process.stdout.write(
    [
      '',
      `machine: ${machineLine(run.machine)}`,
      `command: ${run.command}`,
      `cairn: commit ${run.commit}`,
      `scale: one member each, ${opts.rounds} round(s) alternating; keys ${opts.keys.keySize} B, values ${opts.keys.valSize} B; ` +
        `put/range: ${opts.clients} clients over ${opts.conns} HTTP/2 connections, random keys, ${opts.durationMs / 1000} s after ${opts.warmupMs / 1000} s warm-up; ` +
        'values are medians over rounds, ratios the median of per-round cairn/etcd pairs',
      '',
      md,
      '',
      scaleDetails(rounds),
      '',
    ].join('\n'),
  );
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  const json = { startedAt, finishedAt: new Date().toISOString(), command: run.command, commit: run.commit, machine: run.machine, scaleKeys: keys, table: md, rounds };
  fs.writeFileSync(opts.out, JSON.stringify(json, (_k, v: unknown) => (v instanceof Float64Array ? undefined : v), 2) + '\n');
  log(`results: ${path.relative(process.cwd(), opts.out)}`);
  return rounds.some((r) => r.put10k.errorsTotal + r.range10k.errorsTotal + r.putLarge.errorsTotal + r.rangeLarge.errorsTotal > 0) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    log(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    process.exit(1);
  },
);
