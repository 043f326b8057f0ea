/**
 * The chaos run's cluster: n cairn processes, either on loopback (free ports) or each in a
 * network namespace of its own (NetLab: fixed ports 2379/2380 on the host's address), whose
 * membership can change during the run (member remove, member add -- as a voter or as a
 * learner that is then promoted -- and a start with --initial-cluster-state existing).
 *
 * Members run from a private copy of dist/src taken at start, so a concurrent
 * `npm run build` cannot put a restarted member on other code. Every process is SIGKILLed
 * at exit (and by destroy()).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairnBin, etcdctl, freePort, makeTempDir, repoRoot, type EtcdctlResult } from '../../bench/lib/procs';
import { parseEtcdctlJson, type MemberStatus } from '../helpers/cluster';
import type { NetLab } from './netns';

const READY_MARKER = 'ready to serve client requests';
const OUTPUT_LIMIT = 1024 * 1024;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

function tail(s: string, n: number): string {
  return s.length > n ? '...' + s.slice(s.length - n) : s;
}

export interface BinInfo {
  bin: string;
  nodePath: string;
}

/** Copy dist/src to a temp dir; the copy resolves the repository's node_modules through NODE_PATH. */
export function snapshotDist(): BinInfo {
  const bin = cairnBin();
  if (!fs.existsSync(bin)) throw new Error(`cairn entry point ${bin} does not exist (run \`npm run build\` first)`);
  const srcDir = path.dirname(path.dirname(bin));
  const dest = makeTempDir('cairn-chaos-dist-');
  fs.cpSync(srcDir, path.join(dest, 'src'), { recursive: true });
  return { bin: path.join(dest, 'src', path.relative(srcDir, bin)), nodePath: path.join(repoRoot(), 'node_modules') };
}

export class ChaosMember {
  readonly endpoint: string;
  /** host:port of the client URL (etcdctl endpoint commands and gRPC channels). */
  readonly addr: string;
  readonly peerUrl: string;
  args: string[] = [];
  /** Hex member ID once known. */
  id = '';
  removed = false;
  private proc: ChildProcess | null = null;
  private out = '';

  constructor(
    readonly name: string,
    readonly host: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    private readonly bin: BinInfo,
    /** argv prefix running the process elsewhere (`ip netns exec <ns>`), or []. */
    private readonly prefix: string[],
  ) {
    this.addr = `${host}:${clientPort}`;
    this.endpoint = `http://${this.addr}`;
    this.peerUrl = `http://${host}:${peerPort}`;
  }

  get pid(): number {
    return this.proc?.pid ?? -1;
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  output(): string {
    return this.out;
  }

  /** Spawn one incarnation; resolves once it logged readiness. Throws if it exits first. */
  async start(timeoutMs = 30_000): Promise<void> {
    if (this.running) throw new Error(`member ${this.name} already running`);
    installHooks();
    const from = this.out.length;
    const argv = [...this.prefix, process.execPath, this.bin.bin, ...this.args];
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')));
    env.NODE_PATH = this.bin.nodePath;
    // `ip netns exec` execs the command in place (no fork), so the pid is node's: kill -9
    // and SIGSTOP reach the member itself.
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = child;
    live.add(child);
    const append = (b: Buffer): void => {
      this.out += b.toString('utf8');
      if (this.out.length > 2 * OUTPUT_LIMIT) this.out = this.out.slice(this.out.length - OUTPUT_LIMIT);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    let spawnErr: Error | null = null;
    child.once('error', (e) => (spawnErr = e));
    child.once('exit', () => live.delete(child));
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnErr) throw spawnErr;
      if (this.out.slice(from).includes(READY_MARKER)) return;
      if (child.exitCode !== null || child.signalCode !== null) {
        await sleep(50);
        throw new Error(`member ${this.name} exited before ready (code ${child.exitCode}, signal ${child.signalCode})\nargs: ${this.args.join(' ')}\n${tail(this.out.slice(from), 4000)}`);
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await waitExit(child, 5_000);
        throw new Error(`member ${this.name} not ready after ${timeoutMs} ms\n${tail(this.out.slice(from), 4000)}`);
      }
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    const c = this.proc;
    if (c === null || !this.running) return;
    const exited = waitExit(c, 10_000);
    try {
      c.kill('SIGCONT');
    } catch {
      // gone
    }
    c.kill('SIGTERM');
    await exited;
    if (this.running) {
      c.kill('SIGKILL');
      await waitExit(c, 10_000);
    }
  }

  async kill9(): Promise<void> {
    const c = this.proc;
    if (c === null || !this.running) return;
    const exited = waitExit(c, 10_000);
    c.kill('SIGKILL');
    await exited;
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.proc!.kill(sig);
  }

  ctl(args: string[], timeoutMs = 15_000): Promise<EtcdctlResult> {
    return etcdctl(this.endpoint, args, { timeoutMs });
  }

  /** `endpoint status` of this member, or null if it does not answer in time. */
  async status(timeoutS = 2): Promise<MemberStatus | null> {
    const r = await etcdctl(this.addr, [`--dial-timeout=${timeoutS}s`, `--command-timeout=${timeoutS}s`, 'endpoint', 'status', '-w', 'json'], { timeoutMs: timeoutS * 2000 + 3000 });
    if (r.code !== 0) return null;
    try {
      const e = (parseEtcdctlJson(r.stdout) as Array<{ Endpoint: string; Status: Record<string, unknown> & { header: Record<string, string> } }>)[0];
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
    } catch {
      return null;
    }
  }
}

export interface ChaosClusterOptions {
  members: number;
  /** Run each member in a network namespace of its own (the partition nemesis needs it). */
  lab?: NetLab;
  heartbeatMs?: number;
  electionMs?: number;
}

interface ListedMember {
  id: string;
  name: string;
  peerURLs: string[];
  isLearner: boolean;
}

export class ChaosCluster {
  /** Current members (removed ones are dropped from here, kept in `retired`). */
  readonly members: ChaosMember[] = [];
  readonly retired: ChaosMember[] = [];
  private readonly bin = snapshotDist();
  private added = 0;

  private constructor(readonly opts: ChaosClusterOptions) {}

  static async start(opts: ChaosClusterOptions): Promise<ChaosCluster> {
    const c = new ChaosCluster(opts);
    const names = Array.from({ length: opts.members }, (_, i) => String.fromCharCode(97 + i));
    const ms = [];
    for (const n of names) ms.push(await c.makeMember(n));
    const initial = ms.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const m of ms) m.args = c.argsFor(m, initial, 'new');
    c.members.push(...ms);
    try {
      const started = await Promise.allSettled(ms.map((m) => m.start(60_000)));
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      await c.waitForLeader(60_000);
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  get netns(): boolean {
    return this.opts.lab !== undefined;
  }

  private async makeMember(name: string): Promise<ChaosMember> {
    const dataDir = makeTempDir(`cairn-chaos-${name}-`);
    if (this.opts.lab) {
      const h = this.opts.lab.addHost(name);
      return new ChaosMember(name, h.ip, 2379, 2380, dataDir, this.bin, this.opts.lab.execPrefix(name));
    }
    return new ChaosMember(name, '127.0.0.1', await freePort(), await freePort(), dataDir, this.bin, []);
  }

  private argsFor(m: ChaosMember, initialCluster: string, state: 'new' | 'existing'): string[] {
    return [
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', m.endpoint,
      '--advertise-client-urls', m.endpoint,
      '--listen-peer-urls', m.peerUrl,
      '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', state,
      '--initial-cluster-token', 'cairn-chaos',
      '--heartbeat-interval', String(this.opts.heartbeatMs ?? 50),
      '--election-timeout', String(this.opts.electionMs ?? 500),
    ];
  }

  running(): ChaosMember[] {
    return this.members.filter((m) => m.running);
  }

  /** etcdctl through any running member (other than `not`) that answers; throws the last failure. */
  async ctl(args: string[], not?: ChaosMember, timeoutMs = 15_000): Promise<EtcdctlResult> {
    let last: EtcdctlResult | null = null;
    for (const m of this.running()) {
      if (m === not) continue;
      const r = await etcdctl(m.endpoint, ['--command-timeout=5s', ...args], { timeoutMs });
      if (r.code === 0) return r;
      last = r;
    }
    throw new Error(`etcdctl ${args.join(' ')} failed on every member: ${last ? (last.stderr || last.stdout).trim() : 'no running member'}`);
  }

  async memberList(): Promise<ListedMember[]> {
    const r = await this.ctl(['member', 'list', '-w', 'json']);
    const j = parseEtcdctlJson(r.stdout) as { members?: Array<{ ID: string; name?: string; peerURLs?: string[]; isLearner?: boolean }> };
    return (j.members ?? []).map((x) => ({ id: BigInt(x.ID).toString(16), name: x.name ?? '', peerURLs: x.peerURLs ?? [], isLearner: x.isLearner === true }));
  }

  async idOf(m: ChaosMember): Promise<string> {
    if (m.id) return m.id;
    const l = (await this.memberList()).find((x) => x.peerURLs.includes(m.peerUrl));
    if (!l) throw new Error(`member ${m.name} (${m.peerUrl}) is not in the member list`);
    m.id = l.id;
    return l.id;
  }

  /** `member remove`, then stop the removed process. It stays in `retired` (for its logs). */
  async remove(m: ChaosMember): Promise<void> {
    const id = await this.idOf(m);
    try {
      await this.ctl(['member', 'remove', id], m, 30_000);
    } catch (e) {
      // The command may have failed after the removal was committed: look before giving up.
      const still = await this.memberList().then((l) => l.some((x) => x.id === id), () => true);
      if (still) throw e;
    }
    m.removed = true;
    this.members.splice(this.members.indexOf(m), 1);
    this.retired.push(m);
    await sleep(200);
    m.signal('SIGCONT');
    await m.kill9();
  }

  /**
   * `member add` (as a learner if asked), start the new member with
   * --initial-cluster-state existing, and for a learner, promote it once it has caught up
   * (etcd refuses while it lags: retried for up to `promoteTimeoutMs`).
   */
  async add(learner: boolean, log: (s: string) => void, promoteTimeoutMs = 60_000): Promise<ChaosMember> {
    const name = `x${++this.added}`;
    const m = await this.makeMember(name);
    let initial: string | undefined;
    try {
      const r = await this.ctl(['member', 'add', name, `--peer-urls=${m.peerUrl}`, ...(learner ? ['--learner'] : [])], undefined, 30_000);
      initial = /ETCD_INITIAL_CLUSTER="([^"]*)"/.exec(r.stdout)?.[1];
      const id = /Member\s+([0-9a-f]+)\s+added/.exec(r.stdout)?.[1];
      if (!initial) throw new Error(`member add printed no ETCD_INITIAL_CLUSTER: ${r.stdout}`);
      if (id) m.id = id;
    } catch (e) {
      // The add may have been committed although the command failed: then the member must
      // be started (an unstarted voter would count against the quorum for the rest of the run).
      const list = await this.memberList().catch(() => null);
      const me = list?.find((x) => x.peerURLs.includes(m.peerUrl));
      if (!list || !me) {
        this.opts.lab?.removeHost(name);
        throw e;
      }
      m.id = me.id;
      initial = list.map((x) => (x.id === me.id ? `${name}=${m.peerUrl}` : x.peerURLs.map((u) => `${x.name}=${u}`).join(','))).join(',');
    }
    m.args = this.argsFor(m, initial, 'existing');
    this.members.push(m);
    await m.start(60_000);
    if (learner) {
      const deadline = Date.now() + promoteTimeoutMs;
      for (;;) {
        try {
          await this.ctl(['member', 'promote', await this.idOf(m)], undefined, 15_000);
          log(`  ${name} promoted`);
          break;
        } catch (e) {
          if (Date.now() > deadline) throw new Error(`learner ${name} could not be promoted in ${promoteTimeoutMs} ms: ${(e as Error).message}`);
          await sleep(500);
        }
      }
    }
    return m;
  }

  async statuses(members: ChaosMember[] = this.running()): Promise<Array<MemberStatus | null>> {
    return Promise.all(members.map((m) => m.status()));
  }

  /** Every given member (default: running) answers and names the same leader, one of them. */
  async waitForLeader(timeoutMs = 30_000, members: ChaosMember[] = this.running()): Promise<ChaosMember> {
    const deadline = Date.now() + timeoutMs;
    let last: Array<MemberStatus | null> = [];
    for (;;) {
      last = await this.statuses(members);
      if (last.every((s) => s !== null)) {
        const ss = last as MemberStatus[];
        const lead = ss[0].leader;
        const i = ss.findIndex((s) => s.memberId === lead);
        if (lead !== '0' && i >= 0 && ss.every((s) => s.leader === lead)) return members[i];
      }
      if (Date.now() > deadline) throw new Error(`no agreed leader among ${members.map((m) => m.name).join(',')} after ${timeoutMs} ms: ${JSON.stringify(last)}`);
      await sleep(100);
    }
  }

  /** Every given member reports the same revision and applied index. */
  async waitConverged(timeoutMs = 30_000, members: ChaosMember[] = this.running()): Promise<MemberStatus[]> {
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

  async destroy(): Promise<void> {
    await Promise.all([...this.members, ...this.retired].map((m) => m.kill9()));
  }
}
