/**
 * A private network for chaos runs: every member is a "host" of its own (a Linux network
 * namespace with one veth into a bridge created for the run), the harness and its clients
 * stay in the root namespace and reach the members over the bridge. Partitions are routes
 * inside the namespaces (`ip route add blackhole|prohibit <peer>/32`: packets from that
 * host to that peer are dropped, or refused at once), so a link can be cut in one direction
 * only; delays and loss use `tc netem` where the kernel has it, and otherwise a token-bucket
 * slow link (`tc tbf`: queueing delay + tail drops) and a flapping route (bursty loss).
 *
 * Names (all carry the owning process id, so a later run can tell leftovers of a dead run
 * from the network of a live one running in parallel):
 *   namespaces  cairn-chaos-<pid>-<host>     bridge  cxb<pid>     veths  cxv<pid>x<i>
 * Everything is torn down by destroy(), by an exit / signal hook, and, for runs that died
 * without either, by cleanupLeftovers() at the start of the next run.
 *
 * Needs root (CAP_NET_ADMIN). NetLab.create() throws a clear error otherwise; callers must
 * not turn that into a silent skip (see README: CHAOS_NO_NETNS=1 is the explicit opt-out).
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

export const NS_PREFIX = 'cairn-chaos-';
const BR_PREFIX = 'cxb';
const VETH_PREFIX = 'cxv';

function ipSync(args: string[], ns?: string): string {
  const argv = ns ? ['netns', 'exec', ns, 'ip', ...args] : args;
  return execFileSync('ip', argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryIpSync(args: string[], ns?: string): boolean {
  try {
    ipSync(args, ns);
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 10_000 }, (err, _out, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr: String(stderr ?? '') });
    });
  });
}

function pidAlive(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}

/**
 * Remove namespaces, bridges and veths of chaos runs whose owning process is gone
 * (killing any process still running inside such a namespace: a member of that dead run).
 * Returns what was removed.
 */
export function cleanupLeftovers(): string[] {
  const removed: string[] = [];
  let nsList = '';
  try {
    nsList = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return removed;
  }
  for (const line of nsList.split('\n')) {
    const name = line.split(' ')[0];
    const m = new RegExp(`^${NS_PREFIX}(\\d+)-`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    try {
      const pids = execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n').filter(Boolean);
      for (const p of pids) {
        try {
          process.kill(Number(p), 'SIGKILL');
        } catch {
          // gone
        }
      }
    } catch {
      // no pids
    }
    if (tryIpSync(['netns', 'del', name])) removed.push(name);
  }
  let links = '';
  try {
    links = ipSync(['-o', 'link', 'show']);
  } catch {
    return removed;
  }
  for (const line of links.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (!name) continue;
    const m = new RegExp(`^(?:${BR_PREFIX}|${VETH_PREFIX})(\\d+)`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    if (tryIpSync(['link', 'del', name])) removed.push(name);
  }
  return removed;
}

export interface NetHost {
  name: string;
  ns: string;
  ip: string;
  /** The veth end inside the namespace. */
  dev: string;
}

/** Active fault on a link or host, for heal(). */
type Flapper = { stop: boolean; done: Promise<void> };

const labs = new Set<NetLab>();
let hooked = false;
function installHooks(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const l of labs) l.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      for (const l of labs) l.destroySync();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

export class NetLab {
  readonly hosts = new Map<string, NetHost>();
  readonly bridge: string;
  readonly subnet: string;
  /** The bridge's (root namespace) address. */
  readonly gateway: string;
  /** Whether this kernel has sch_netem (else slow/flaky links fall back to tbf / route flapping). */
  netem = false;
  private nextHost = 10;
  private nextVeth = 0;
  private flappers: Flapper[] = [];
  private destroyed = false;

  private constructor(readonly owner: number, third: number) {
    this.bridge = `${BR_PREFIX}${owner}`;
    this.subnet = `10.213.${third}`;
    this.gateway = `${this.subnet}.1`;
  }

  /** Create the bridge for this process (one lab per process at a time). */
  static create(): NetLab {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new Error('network namespaces need root (CAP_NET_ADMIN); this process is not root. Set CHAOS_NO_NETNS=1 to run without partitions explicitly.');
    }
    for (const l of labs) throw new Error(`a NetLab (${l.bridge}) is already active in this process`);
    const left = cleanupLeftovers();
    if (left.length) console.log(`netns: removed leftovers of dead chaos runs: ${left.join(' ')}`);
    // A /24 no other live lab (of a parallel run) uses.
    const used = ipSync(['-4', '-o', 'addr', 'show']);
    let third = process.pid % 250;
    for (let i = 0; i < 250 && used.includes(`10.213.${third}.`); i++) third = (third + 1) % 250;
    const lab = new NetLab(process.pid, third);
    labs.add(lab);
    installHooks();
    try {
      ipSync(['link', 'add', lab.bridge, 'type', 'bridge']);
      ipSync(['addr', 'add', `${lab.gateway}/24`, 'dev', lab.bridge]);
      ipSync(['link', 'set', lab.bridge, 'up']);
    } catch (e) {
      lab.destroySync();
      throw new Error(`cannot create the chaos bridge ${lab.bridge}: ${(e as { stderr?: string }).stderr ?? String(e)}. Set CHAOS_NO_NETNS=1 to run without partitions explicitly.`);
    }
    return lab;
  }

  /** A new host (namespace + veth on the bridge + address). */
  addHost(name: string): NetHost {
    if (this.hosts.has(name)) throw new Error(`host ${name} exists`);
    const ns = `${NS_PREFIX}${this.owner}-${name}`;
    const outer = `${VETH_PREFIX}${this.owner}x${this.nextVeth++}`;
    const ip = `${this.subnet}.${this.nextHost++}`;
    try {
      ipSync(['netns', 'add', ns]);
      ipSync(['link', 'add', outer, 'type', 'veth', 'peer', 'name', `${outer}i`]);
      ipSync(['link', 'set', `${outer}i`, 'netns', ns]);
      ipSync(['link', 'set', `${outer}i`, 'name', 'eth0'], ns);
      ipSync(['addr', 'add', `${ip}/24`, 'dev', 'eth0'], ns);
      ipSync(['link', 'set', 'eth0', 'up'], ns);
      ipSync(['link', 'set', 'lo', 'up'], ns);
      ipSync(['link', 'set', outer, 'master', this.bridge]);
      ipSync(['link', 'set', outer, 'up']);
    } catch (e) {
      throw new Error(`cannot create chaos host ${ns}: ${(e as { stderr?: string }).stderr ?? String(e)}`);
    }
    const h: NetHost = { name, ns, ip, dev: 'eth0' };
    this.hosts.set(name, h);
    if (this.hosts.size === 1) this.netem = this.probeNetem(h);
    return h;
  }

  private probeNetem(h: NetHost): boolean {
    try {
      execFileSync('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], { stdio: 'ignore' });
      execFileSync('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'del', 'dev', 'lo', 'root'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  /** Remove a host (its processes must be gone). */
  removeHost(name: string): void {
    const h = this.hosts.get(name);
    if (!h) return;
    tryIpSync(['netns', 'del', h.ns]); // deletes the veth pair with it
    this.hosts.delete(name);
  }

  host(name: string): NetHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no chaos host ${name}`);
    return h;
  }

  /** argv prefix that runs a command inside a host's namespace. */
  execPrefix(name: string): string[] {
    return ['ip', 'netns', 'exec', this.host(name).ns];
  }

  // ------------------------------------------------------------------------------
  // Faults

  /**
   * Cut the link from `from` to `to` in that direction only: packets `from` sends to `to`
   * are dropped (blackhole: the sender sees timeouts) or refused (prohibit: the sender gets
   * an error at once). A TCP connection needs both directions, so either way no connection
   * works across a cut link, but only `from`'s side notices quickly with prohibit.
   */
  async cut(from: string, to: string, how: 'blackhole' | 'prohibit' = 'blackhole'): Promise<void> {
    const r = await run('ip', ['netns', 'exec', this.host(from).ns, 'ip', 'route', 'replace', how, `${this.host(to).ip}/32`]);
    if (r.code !== 0) throw new Error(`ip route ${how} ${from}->${to}: ${r.stderr}`);
  }

  /** Cut both directions between every member of `a` and every member of `b`. */
  async partition(a: string[], b: string[], how: 'blackhole' | 'prohibit' = 'blackhole'): Promise<void> {
    for (const x of a) for (const y of b) if (x !== y) {
      await this.cut(x, y, how);
      await this.cut(y, x, how);
    }
  }

  /** Slow down everything a host sends (delay ± jitter with netem, else a tight token bucket). */
  async slow(name: string, delayMs: number): Promise<string> {
    const h = this.host(name);
    const args = this.netem
      ? ['qdisc', 'replace', 'dev', h.dev, 'root', 'netem', 'delay', `${delayMs}ms`, `${Math.round(delayMs / 4)}ms`]
      : ['qdisc', 'replace', 'dev', h.dev, 'root', 'tbf', 'rate', '256kbit', 'burst', '4kb', 'latency', `${Math.max(50, delayMs)}ms`];
    const r = await run('ip', ['netns', 'exec', h.ns, 'tc', ...args]);
    if (r.code !== 0) throw new Error(`tc ${args.join(' ')} in ${h.ns}: ${r.stderr}`);
    return this.netem ? `netem delay ${delayMs}ms` : `tbf 256kbit latency ${Math.max(50, delayMs)}ms`;
  }

  /**
   * Lose packets a host sends to its peers: netem loss where available, else its routes to
   * `peers` flap (blackholed for 50–300 ms, open for 50–300 ms, ...) until heal().
   */
  async lossy(name: string, peers: string[], percent: number, rand: () => number): Promise<string> {
    const h = this.host(name);
    if (this.netem) {
      const r = await run('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'replace', 'dev', h.dev, 'root', 'netem', 'loss', `${percent}%`]);
      if (r.code !== 0) throw new Error(`tc netem loss in ${h.ns}: ${r.stderr}`);
      return `netem loss ${percent}%`;
    }
    const f: Flapper = { stop: false, done: Promise.resolve() };
    f.done = (async () => {
      while (!f.stop) {
        for (const p of peers) await this.cut(name, p).catch(() => undefined);
        await new Promise((r) => setTimeout(r, 50 + rand() * 250));
        for (const p of peers) await run('ip', ['netns', 'exec', h.ns, 'ip', 'route', 'del', `${this.host(p).ip}/32`]);
        if (f.stop) break;
        await new Promise((r) => setTimeout(r, 50 + rand() * 250));
      }
    })();
    this.flappers.push(f);
    return 'flapping routes';
  }

  /** Undo every fault: routes to peers, qdiscs, flapping. */
  async heal(): Promise<void> {
    for (const f of this.flappers) f.stop = true;
    await Promise.all(this.flappers.map((f) => f.done));
    this.flappers = [];
    for (const h of this.hosts.values()) {
      for (const p of this.hosts.values()) {
        if (p !== h) await run('ip', ['netns', 'exec', h.ns, 'ip', 'route', 'del', `${p.ip}/32`]);
      }
      await run('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'del', 'dev', h.dev, 'root']);
    }
  }

  /** The routes / qdiscs now in place (for logs and tests). */
  describe(): string {
    const out: string[] = [];
    for (const h of this.hosts.values()) {
      const routes = ipSync(['route', 'show'], h.ns).split('\n').filter((l) => /blackhole|prohibit/.test(l));
      let qd = '';
      try {
        qd = execFileSync('ip', ['netns', 'exec', h.ns, 'tc', 'qdisc', 'show', 'dev', h.dev], { encoding: 'utf8' }).trim();
      } catch {
        // none
      }
      out.push(`${h.name}(${h.ip}): ${routes.join('; ') || 'no cuts'}${/netem|tbf/.test(qd) ? `; ${qd}` : ''}`);
    }
    return out.join('\n');
  }

  /** Tear everything down (synchronously: also used from the exit hook). Idempotent. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const f of this.flappers) f.stop = true;
    for (const h of this.hosts.values()) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', h.ns], { encoding: 'utf8' }).split('\n').filter(Boolean);
        for (const p of pids) {
          try {
            process.kill(Number(p), 'SIGKILL');
          } catch {
            // gone
          }
        }
      } catch {
        // none
      }
      tryIpSync(['netns', 'del', h.ns]);
    }
    this.hosts.clear();
    // A veth whose host was being created when we were stopped is still in the root namespace.
    try {
      for (const line of ipSync(['-o', 'link', 'show']).split('\n')) {
        const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
        if (name?.startsWith(`${VETH_PREFIX}${this.owner}x`)) tryIpSync(['link', 'del', name]);
      }
    } catch {
      // best effort
    }
    tryIpSync(['link', 'del', this.bridge]);
    labs.delete(this);
  }

  async destroy(): Promise<void> {
    for (const f of this.flappers) f.stop = true;
    await Promise.all(this.flappers.map((f) => f.done));
    this.destroySync();
  }
}
