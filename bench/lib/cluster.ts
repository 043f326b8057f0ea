/**
 * Multi-member clusters for the benchmark: start n etcd or cairn members on loopback with
 * etcd's clustering flags, wait until every member names the same non-zero leader
 * (`etcdctl endpoint status -w json` on each member), and stop them all.
 *
 * etcdctl endpoints for `endpoint status` are given WITHOUT http:// (`127.0.0.1:port`):
 * etcdctl sends the scheme as :authority for that command and node's http2 rejects it.
 */
import { etcdctl, freePort, isPortClash, makeTempDir, startMember, type ServerKind, type ServerProc } from './procs';

export interface ClusterStartOptions {
  /** Members (default 3); names a, b, c, ... */
  size?: number;
  /** --heartbeat-interval and --election-timeout, ms (etcd's defaults 100 / 1000). */
  heartbeatMs: number;
  electionMs: number;
  /** cairn only: entry point and node options (e.g. --cpu-prof). */
  bin?: string;
  nodeArgs?: (name: string) => string[];
  env?: NodeJS.ProcessEnv;
  /** Processes up and one agreed leader within this long (default 60 s). */
  readyTimeoutMs?: number;
}

export interface MemberStatus {
  memberId: string;
  leader: string;
  raftTerm: number;
  raftIndex: number;
}

/** A member's `host:port` for etcdctl endpoint commands. */
export function addrOf(m: ServerProc): string {
  return `127.0.0.1:${m.clientPort}`;
}

/** etcdctl prints uint64 IDs as bare JSON numbers beyond 2^53: quote bare integers before parsing. */
function parseEtcdctlJson(text: string): unknown {
  return JSON.parse(text.replace(/(":\s*)(-?\d+)(?=\s*[,}\]])/g, '$1"$2"'));
}

/** `endpoint status` of one member, or null when it does not answer. */
export async function memberStatus(m: ServerProc, timeoutS = 2): Promise<MemberStatus | null> {
  const r = await etcdctl(addrOf(m), [`--dial-timeout=${timeoutS}s`, `--command-timeout=${timeoutS}s`, 'endpoint', 'status', '-w', 'json'], {
    timeoutMs: timeoutS * 2000 + 3000,
  });
  if (r.code !== 0) return null;
  try {
    const e = (parseEtcdctlJson(r.stdout) as Array<{ Status: { header: Record<string, string>; leader?: string; raftIndex?: string } }>)[0];
    return {
      memberId: String(e.Status.header.member_id),
      leader: String(e.Status.leader ?? '0'),
      raftTerm: Number(e.Status.header.raft_term ?? 0),
      raftIndex: Number(e.Status.raftIndex ?? 0),
    };
  } catch {
    return null;
  }
}

export class BenchCluster {
  constructor(
    readonly kind: ServerKind,
    readonly members: ServerProc[],
  ) {}

  /**
   * Wait until every member answers and all name the same non-zero leader that is one of
   * them; returns the leader's index in `members` and the statuses.
   */
  async waitLeader(timeoutMs = 30_000): Promise<{ index: number; statuses: MemberStatus[] }> {
    const deadline = Date.now() + timeoutMs;
    let last: Array<MemberStatus | null> = [];
    for (;;) {
      last = await Promise.all(this.members.map((m) => memberStatus(m)));
      if (last.every((s) => s !== null)) {
        const ss = last as MemberStatus[];
        const lead = ss[0].leader;
        const index = ss.findIndex((s) => s.memberId === lead);
        if (lead !== '0' && index >= 0 && ss.every((s) => s.leader === lead)) return { index, statuses: ss };
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${this.kind}: no agreed leader after ${timeoutMs} ms; last statuses ${JSON.stringify(last)}\n` +
            this.members.map((m) => `--- ${m.name} (running=${m.running})\n${m.output().slice(-2000)}`).join('\n'),
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM every member concurrently (SIGKILL after 10 s each). */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
  }
}

/**
 * Start an n-member cluster (`--initial-cluster-state new`) on free loopback ports, data
 * dirs under os.tmpdir() (same disk for both servers), all members concurrently; resolves
 * once all agree on a leader. Retries with new ports on a port clash.
 */
export async function startCluster(kind: ServerKind, opts: ClusterStartOptions): Promise<BenchCluster> {
  const size = opts.size ?? 3;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;
  let lastErr: unknown = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const names = Array.from({ length: size }, (_, i) => String.fromCharCode(97 + i));
    const ports: Array<{ client: number; peer: number }> = [];
    for (let i = 0; i < size; i++) ports.push({ client: await freePort(), peer: await freePort() });
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${ports[i].peer}`).join(',');
    const token = `bench-${kind}-${process.pid}-${Date.now()}`;
    const results = await Promise.allSettled(
      names.map((name, i) =>
        startMember(kind, {
          name,
          dataDir: makeTempDir(`bench-${kind}-${name}-`),
          cluster: { clientPort: ports[i].client, peerPort: ports[i].peer, initialCluster, token },
          extraArgs: ['--heartbeat-interval', String(opts.heartbeatMs), '--election-timeout', String(opts.electionMs)],
          readyTimeoutMs,
          bin: opts.bin,
          nodeArgs: opts.nodeArgs?.(name),
          env: opts.env,
        }),
      ),
    );
    const up = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    if (failed.length === 0) {
      const c = new BenchCluster(kind, up);
      try {
        await c.waitLeader(readyTimeoutMs);
        return c;
      } catch (e) {
        await c.stop();
        throw e;
      }
    }
    await Promise.all(up.map((m) => m.stop()));
    lastErr = failed[0];
    if (!failed.some(isPortClash)) break;
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}
