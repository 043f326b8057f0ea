/**
 * Multi-member cairn clusters for end-to-end tests: start n `cairn` processes with etcd's
 * clustering flags on free loopback ports and fresh data dirs, wait until every member
 * answers and all agree on one leader, find the leader, and stop / kill -9 / restart
 * single members.
 *
 * Every process started here is SIGKILLed when the Node process exits (and by
 * `cluster.destroy()`); data dirs come from procs.makeTempDir, so they are removed at exit
 * too (CAIRN_KEEP_DATA=1 keeps them).
 *
 * etcdctl endpoints for `endpoint status|hashkv|health` are given WITHOUT the http://
 * scheme (`127.0.0.1:port`): etcdctl sends the scheme as :authority for those commands and
 * node's http2 rejects that. `member.addr` is that form, `member.endpoint` the URL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairnBin, ETCD_BIN, etcdctl, freePort, makeTempDir, repoRoot, type EtcdctlResult } from '../../bench/lib/procs';

const READY_MARKER = 'ready to serve client requests';
const OUTPUT_LIMIT = 1024 * 1024;

export interface ClusterOptions {
  /** --heartbeat-interval in ms (default 50). */
  heartbeatMs?: number;
  /** --election-timeout in ms (default 500). */
  electionMs?: number;
  /** Extra flags for every member. */
  extraArgs?: string[];
  /** How long to wait for the whole cluster (processes up + one agreed leader); default 30 s. */
  readyTimeoutMs?: number;
  /** Member names (default a, b, c, ...). */
  names?: string[];
  /**
   * Which server to run: cairn (default) or /usr/bin/etcd, to check that a test states
   * etcd's behaviour. Defaults to $CAIRN_COMPAT_AGAINST (as in test/helpers/servers.ts).
   */
  server?: 'cairn' | 'etcd';
  /**
   * Run cairn from a private copy of dist/src taken at cluster start (default true unless
   * $CAIRN_BIN is set), so that a concurrent `npm run build` cannot leave a restarted
   * member on different code than the others.
   */
  snapshotDist?: boolean;
}

/**
 * Copy the built dist/src next to a fresh temp dir; returns the copied entry point and
 * the NODE_PATH that lets it resolve the repository's node_modules (dist is CommonJS).
 */
function snapshotDist(): { bin: string; nodePath: string } {
  const bin = cairnBin();
  const srcDir = path.dirname(path.dirname(bin)); // dist/src
  const dest = makeTempDir('cairn-dist-');
  fs.cpSync(srcDir, path.join(dest, 'src'), { recursive: true });
  return { bin: path.join(dest, 'src', path.relative(srcDir, bin)), nodePath: path.join(repoRoot(), 'node_modules') };
}

/** cairn unless CAIRN_COMPAT_AGAINST=etcd. */
export function clusterServerUnderTest(): 'cairn' | 'etcd' {
  return (process.env.CAIRN_COMPAT_AGAINST ?? 'cairn').toLowerCase() === 'etcd' ? 'etcd' : 'cairn';
}

/** What `etcdctl endpoint status -w json` says about one member (int64s as decimal strings). */
export interface MemberStatus {
  endpoint: string;
  clusterId: string;
  memberId: string;
  revision: number;
  raftTerm: number;
  leader: string;
  raftIndex: number;
  raftAppliedIndex: number;
  version: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------
// Cleanup of our own children

const live = new Set<ChildProcess>();
let hooked = false;
function installHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) {
      try {
        c.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    live.clear();
  });
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * etcdctl prints uint64 IDs as bare JSON numbers beyond 2^53; quote every bare integer
 * value before JSON.parse so IDs keep all their digits.
 */
export function parseEtcdctlJson(text: string): unknown {
  return JSON.parse(text.replace(/(":\s*)(-?\d+)(?=\s*[,}\]])/g, '$1"$2"'));
}

// ---------------------------------------------------------------------------------
// Members

export class ClusterMember {
  readonly endpoint: string;
  /** `127.0.0.1:<clientPort>`, for etcdctl endpoint commands. */
  readonly addr: string;
  readonly peerUrl: string;
  args: string[] = [];
  private child: ChildProcess | null = null;
  private buf = '';

  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    readonly server: 'cairn' | 'etcd' = 'cairn',
    /** cairn entry point and NODE_PATH for it (default: cairnBin(), inherited NODE_PATH). */
    readonly bin: { bin: string; nodePath?: string } = { bin: cairnBin() },
  ) {
    this.addr = `127.0.0.1:${clientPort}`;
    this.endpoint = `http://${this.addr}`;
    this.peerUrl = `http://127.0.0.1:${peerPort}`;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** stdout+stderr of all incarnations (last 1 MiB). */
  output(): string {
    return this.buf;
  }

  /** Log lines (of all incarnations) whose text matches `re`. */
  logLines(re: RegExp): string[] {
    return this.buf.split('\n').filter((l) => re.test(l));
  }

  /** Spawn one incarnation; resolves once it logged readiness. Throws if it exits first. */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.running) throw new Error(`member ${this.name} already running`);
    installHooks();
    const from = this.buf.length;
    const [cmd, argv] = this.server === 'etcd' ? [ETCD_BIN, this.args] : [process.execPath, [this.bin.bin, ...this.args]];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')));
    if (this.bin.nodePath !== undefined) env.NODE_PATH = this.bin.nodePath;
    const child = spawn(cmd, argv, {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    live.add(child);
    const append = (b: Buffer): void => {
      this.buf += b.toString('utf8');
      if (this.buf.length > 2 * OUTPUT_LIMIT) this.buf = this.buf.slice(this.buf.length - OUTPUT_LIMIT);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    let spawnErr: Error | null = null;
    child.once('error', (e) => (spawnErr = e));
    child.once('exit', () => live.delete(child));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnErr) throw spawnErr;
      const since = this.buf.length >= from ? this.buf.slice(from) : this.buf;
      if (since.includes(READY_MARKER)) return;
      if (child.exitCode !== null || child.signalCode !== null) {
        await sleep(50);
        throw new Error(
          `cairn member ${this.name} exited before ready (code ${child.exitCode}, signal ${child.signalCode})\n` +
            `args: ${this.args.join(' ')}\n${tail(this.buf.slice(from), 6000)}`,
        );
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await waitExit(child, 5_000);
        throw new Error(`cairn member ${this.name} not ready after ${timeoutMs} ms\n${tail(this.buf.slice(from), 6000)}`);
      }
      await sleep(25);
    }
  }

  /** SIGTERM, wait for exit (SIGKILL after 10 s). */
  async stop(): Promise<void> {
    const c = this.child;
    if (c === null || !this.running) return;
    const exited = waitExit(c, 10_000);
    c.kill('SIGTERM');
    await exited;
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await waitExit(c, 10_000);
    }
  }

  /** SIGKILL, wait for exit. */
  async kill9(): Promise<void> {
    const c = this.child;
    if (c === null || !this.running) return;
    const exited = waitExit(c, 10_000);
    c.kill('SIGKILL');
    await exited;
  }

  /** Stop if running, then start again with the same flags and data dir (waits for the ready log line). */
  async restart(timeoutMs = 20_000): Promise<void> {
    await this.stop();
    await this.start(timeoutMs);
  }

  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null {
    const c = this.child;
    if (c === null || this.running) return null;
    return { code: c.exitCode, signal: c.signalCode };
  }

  /** `etcdctl --endpoints <http endpoint> ...args` against this member. */
  ctl(args: string[], timeoutMs = 30_000): Promise<EtcdctlResult> {
    return etcdctl(this.endpoint, args, { timeoutMs });
  }

  /** `endpoint status` of this member, or null if it does not answer within the timeout. */
  async status(commandTimeoutS = 2): Promise<MemberStatus | null> {
    const r = await etcdctl(
      this.addr,
      [`--dial-timeout=${commandTimeoutS}s`, `--command-timeout=${commandTimeoutS}s`, 'endpoint', 'status', '-w', 'json'],
      { timeoutMs: commandTimeoutS * 1000 * 2 + 3_000 },
    );
    if (r.code !== 0) return null;
    try {
      return toStatus((parseEtcdctlJson(r.stdout) as unknown[])[0]);
    } catch {
      return null;
    }
  }
}

function toStatus(raw: unknown): MemberStatus {
  const e = raw as { Endpoint: string; Status: Record<string, unknown> & { header: Record<string, string> } };
  const s = e.Status;
  return {
    endpoint: e.Endpoint,
    clusterId: String(s.header.cluster_id),
    memberId: String(s.header.member_id),
    revision: Number(s.header.revision ?? 0),
    raftTerm: Number(s.header.raft_term ?? 0),
    leader: String(s.leader ?? '0'),
    raftIndex: Number(s.raftIndex ?? 0),
    raftAppliedIndex: Number(s.raftAppliedIndex ?? 0),
    version: String(s.version ?? ''),
  };
}

function tail(s: string, n: number): string {
  return s.length > n ? '...' + s.slice(s.length - n) : s;
}

// ---------------------------------------------------------------------------------
// Clusters

export class Cluster {
  constructor(
    readonly members: ClusterMember[],
    readonly opts: Required<Pick<ClusterOptions, 'heartbeatMs' | 'electionMs'>>,
  ) {}

  member(name: string): ClusterMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no member ${name}`);
    return m;
  }

  running(): ClusterMember[] {
    return this.members.filter((m) => m.running);
  }

  /** `endpoint status` of every given member (default: running ones); null for those that do not answer. */
  async statuses(members: ClusterMember[] = this.running()): Promise<Array<MemberStatus | null>> {
    return Promise.all(members.map((m) => m.status()));
  }

  /**
   * Wait until every given member (default: running ones) answers `endpoint status` and
   * they all name the same non-zero leader, which is one of them. Returns that leader and
   * the statuses. Throws with the last statuses and log tails after `timeoutMs`.
   */
  async waitForLeader(timeoutMs = 30_000, members: ClusterMember[] = this.running()): Promise<{ leader: ClusterMember; statuses: MemberStatus[] }> {
    const deadline = Date.now() + timeoutMs;
    let last: Array<MemberStatus | null> = [];
    for (;;) {
      last = await this.statuses(members);
      if (last.every((s) => s !== null)) {
        const ss = last as MemberStatus[];
        const lead = ss[0].leader;
        if (lead !== '0' && ss.every((s) => s.leader === lead)) {
          const i = ss.findIndex((s) => s.memberId === lead);
          if (i >= 0) return { leader: members[i], statuses: ss };
        }
      }
      if (Date.now() > deadline) {
        throw new Error(
          `no agreed leader among ${members.map((m) => m.name).join(',')} after ${timeoutMs} ms; last statuses: ${JSON.stringify(last)}\n` +
            members.map((m) => `--- ${m.name} (running=${m.running})\n${tail(m.output(), 2000)}`).join('\n'),
        );
      }
      await sleep(100);
    }
  }

  /** The current leader (waits for agreement among the running members). */
  async leader(timeoutMs = 30_000): Promise<ClusterMember> {
    return (await this.waitForLeader(timeoutMs)).leader;
  }

  /**
   * Wait until every given member (default: running ones) reports the same revision and
   * applied index; returns the statuses.
   */
  async waitConverged(timeoutMs = 30_000, members: ClusterMember[] = this.running()): Promise<MemberStatus[]> {
    const deadline = Date.now() + timeoutMs;
    let last: Array<MemberStatus | null> = [];
    for (;;) {
      last = await this.statuses(members);
      if (last.every((s) => s !== null)) {
        const ss = last as MemberStatus[];
        if (ss.every((s) => s.revision === ss[0].revision && s.raftAppliedIndex === ss[0].raftAppliedIndex)) return ss;
      }
      if (Date.now() > deadline) throw new Error(`members did not converge after ${timeoutMs} ms: ${JSON.stringify(last)}`);
      await sleep(200);
    }
  }

  /** SIGKILL every member and wait for them. Data dirs are removed at process exit. */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill9()));
  }

  /** SIGTERM every member. */
  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }

  /** Every member's log, for failure messages. */
  logs(maxPerMember = 4000): string {
    return this.members.map((m) => `--- ${m.name} (running=${m.running})\n${tail(m.output(), maxPerMember)}`).join('\n');
  }
}

function isPortClash(e: unknown): boolean {
  return /EADDRINUSE|address already in use/i.test(e instanceof Error ? e.message : String(e));
}

/**
 * Start an n-member cairn cluster (`--initial-cluster-state new`) on free loopback ports
 * with fresh data dirs; resolves once every member serves and all agree on a leader.
 * Retries with new ports on a port clash.
 */
export async function startCairnCluster(n: number, opts: ClusterOptions = {}): Promise<Cluster> {
  const server = opts.server ?? clusterServerUnderTest();
  const bin = cairnBin();
  if (server === 'cairn' && !fs.existsSync(bin)) throw new Error(`cairn entry point ${bin} does not exist (run \`npm run build\` first)`);
  const heartbeatMs = opts.heartbeatMs ?? 50;
  const electionMs = opts.electionMs ?? 500;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const useSnapshot = server === 'cairn' && (opts.snapshotDist ?? process.env.CAIRN_BIN === undefined);
  const binInfo = useSnapshot ? snapshotDist() : { bin };
  const names = opts.names ?? Array.from({ length: n }, (_, i) => String.fromCharCode(97 + i));
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const members: ClusterMember[] = [];
    for (const name of names.slice(0, n)) {
      members.push(new ClusterMember(name, await freePort(), await freePort(), makeTempDir(`${server}-cluster-${name}-`), server, binInfo));
    }
    const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of members) {
      m.args = [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', m.endpoint,
        '--advertise-client-urls', m.endpoint,
        '--listen-peer-urls', m.peerUrl,
        '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', 'cairn-e2e-cluster',
        '--heartbeat-interval', String(heartbeatMs),
        '--election-timeout', String(electionMs),
        ...(opts.extraArgs ?? []),
      ];
    }
    const cluster = new Cluster(members, { heartbeatMs, electionMs });
    try {
      const started = await Promise.allSettled(members.map((m) => m.start(readyTimeoutMs)));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      await cluster.waitForLeader(readyTimeoutMs);
      return cluster;
    } catch (e) {
      lastErr = e;
      await cluster.destroy();
      if (!isPortClash(e)) throw e;
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}
