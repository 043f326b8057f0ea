/**
 * Scripted etcdctl scenarios with long-running children (`etcdctl watch`, `watch -i`,
 * `lease keep-alive`) for golden comparisons between two servers.
 *
 * A Scenario drives one server: ordinary etcdctl commands run one at a time and are
 * recorded as transcript steps (the StepResult of ./etcdctl-transcript), background
 * commands are spawned, fed stdin, waited on ("until the watcher has printed N
 * events") and finally killed, their whole stdout/stderr recorded as one step. Run the
 * same scenario function against two servers and compare `transcript()`s with
 * firstDifference().
 *
 * Determinism rules the scenarios follow (see test/e2e/etcdctl-watch-lease.test.ts):
 *  - a write that watchers see is followed by a wait until every live watcher has
 *    printed the events it should (lockstep), so response batching and the order of
 *    output lines do not depend on timing;
 *  - a watcher without --rev is only relied on once it is connected (its TCP connection
 *    to the server is ESTABLISHED, read from /proc) plus a settle delay for the watch
 *    create request;
 *  - lease IDs (random per server) are named LEASE_1, LEASE_2, ... in order of first
 *    appearance; remaining TTLs are replaced by a placeholder when within
 *    [granted-5, granted] and left as they are (so they show up in a diff) otherwise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { ETCDCTL_BIN, etcdctl, type EtcdctlResult } from '../../bench/lib/procs';
import { describeStep, normalise, type StepResult } from './etcdctl-transcript';

/** How many events an event on `key` produces in a watcher (0 = not watched). */
export type KeyMatch = (key: string) => number;

export const matchKey = (k: string): KeyMatch => (key) => (key === k ? 1 : 0);
export const matchPrefix = (p: string): KeyMatch => (key) => (key.startsWith(p) ? 1 : 0);
export const matchRange = (from: string, to: string): KeyMatch => (key) => (key >= from && key < to ? 1 : 0);
export const matchAll = (...ms: KeyMatch[]): KeyMatch => (key) => ms.reduce((n, m) => n + m(key), 0);

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Code recorded for a background command that was still running when it was stopped. */
export const KILLED_BY_HARNESS = -9;

/**
 * Count watch events in etcdctl watch output: simple format prints the event type on
 * its own line ("PUT" / "DELETE"), json format one {"Header":...,"Events":[...]} line
 * per response. (Scenarios must not use the values "PUT" / "DELETE".)
 */
export function countWatchEvents(stdout: string): number {
  let n = 0;
  for (const line of stdout.split('\n')) {
    if (line === 'PUT' || line === 'DELETE') n++;
    else if (line.startsWith('{"Header"')) {
      try {
        const r = JSON.parse(line) as { Events?: unknown[] | null };
        n += Array.isArray(r.Events) ? r.Events.length : 0;
      } catch {
        // a partial line; counted when complete
      }
    }
  }
  return n;
}

/** Socket inodes of a process (from /proc/<pid>/fd). */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** True when `pid` holds an ESTABLISHED TCP connection to remote port `port`. */
export function hasEstablishedConnection(pid: number, port: number): boolean {
  const inodes = socketInodes(pid);
  if (inodes.size === 0) return false;
  for (const file of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const remPort = parseInt(f[2].split(':')[1] ?? '', 16);
      if (remPort === port && f[3] === '01' && inodes.has(f[9])) return true;
    }
  }
  return false;
}

/** A long-running etcdctl child. */
export class Background {
  stdout = '';
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  killedByHarness = false;
  /** Set once a wait on it timed out; later waits return immediately. */
  stalled = false;
  /** Harness notes appended to the recorded stderr (e.g. a wait that timed out). */
  readonly notes: string[] = [];
  /** Events it must have printed so far (maintained by Scenario for watchers). */
  expected = 0;
  private readonly child: ChildProcess;
  private readonly changed = new Set<() => void>();

  constructor(
    readonly name: string,
    readonly endpoint: string,
    readonly args: readonly string[],
    /** Which keys it watches; replace it when an interactive watcher gains a watch. */
    public match: KeyMatch | null,
    stdin: boolean,
  ) {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
    env.ETCDCTL_API = '3';
    this.child = spawn(ETCDCTL_BIN, ['--endpoints', endpoint, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (b: Buffer) => {
      this.stdout += b.toString('utf8');
      this.poke();
    });
    this.child.stderr!.on('data', (b: Buffer) => {
      this.stderr += b.toString('utf8');
      this.poke();
    });
    this.child.stdin!.on('error', () => {
      // it may have exited
    });
    if (!stdin) this.child.stdin!.end();
    this.child.once('error', (e) => {
      this.stderr += `\n[harness] spawn error: ${e.message}`;
      this.exit = { code: -1, signal: null };
      this.poke();
    });
    this.child.once('close', (code, signal) => {
      this.exit = { code, signal };
      this.poke();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === null;
  }

  events(): number {
    return countWatchEvents(this.stdout);
  }

  private poke(): void {
    for (const f of [...this.changed]) f();
  }

  /** Resolve true once pred() holds, false on timeout or when the process has exited without pred(). */
  waitUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    if (!this.running) return Promise.resolve(false);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | null = null;
      const check = (): void => {
        if (pred()) finish(true);
        else if (!this.running) finish(false);
      };
      const finish = (ok: boolean): void => {
        this.changed.delete(check);
        if (timer) clearTimeout(timer);
        resolve(ok);
      };
      this.changed.add(check);
      timer = setTimeout(() => finish(pred()), timeoutMs);
    });
  }

  waitExit(timeoutMs: number): Promise<boolean> {
    return this.waitUntil(() => !this.running, timeoutMs).then(() => !this.running);
  }

  /** Wait until the process has a TCP connection to the server (or exited / timed out). */
  async waitConnected(port: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) return false;
      if (hasEstablishedConnection(this.pid, port)) return true;
      await sleep(20);
    }
    return false;
  }

  write(s: string): void {
    if (this.running) this.child.stdin!.write(s);
  }

  /** SIGKILL if still running; resolves once it has exited. */
  async stop(): Promise<void> {
    if (this.running) {
      this.killedByHarness = true;
      this.child.kill('SIGKILL');
      await this.waitExit(10_000);
    }
  }
}

export interface ScenarioOptions {
  /** Port of the server (for the connection check of watchers). */
  port: number;
  /** Timeout of one etcdctl command (default 20 s). */
  commandTimeoutMs?: number;
  /** Timeout of one wait for watch events (default 15 s). */
  waitTimeoutMs?: number;
  /** Delay after a watcher is connected before its watch is relied on (default 1000 ms). */
  settleMs?: number;
}

interface RawStep {
  command: string;
  code: number;
  stdout: string;
  stderr: string;
}

/** One server's run of a scripted scenario. */
export class Scenario {
  private readonly steps: RawStep[] = [];
  private readonly bgs = new Map<string, Background>();
  /** Lease IDs (16 hex digits) granted in this scenario, in order. */
  readonly leases: string[] = [];
  /** Problems of the harness itself (a wait that timed out...): must be empty for the reference. */
  readonly problems: string[] = [];
  readonly commandTimeoutMs: number;
  readonly waitTimeoutMs: number;
  readonly settleMs: number;
  readonly port: number;

  constructor(
    readonly label: string,
    readonly endpoint: string,
    opts: ScenarioOptions,
  ) {
    this.port = opts.port;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? 20_000;
    this.waitTimeoutMs = opts.waitTimeoutMs ?? 15_000;
    this.settleMs = opts.settleMs ?? 1000;
  }

  /**
   * Run one etcdctl command and record it. `touched` lists the keys of the events the
   * command produces (in order); every live watcher whose match covers them must
   * print them before the next step (waited for here).
   */
  async ctl(
    args: string[],
    opts: { input?: string; note?: string; touched?: string[]; timeoutMs?: number } = {},
  ): Promise<EtcdctlResult> {
    const r = await etcdctl(this.endpoint, args, { input: opts.input, timeoutMs: opts.timeoutMs ?? this.commandTimeoutMs });
    this.steps.push({ command: describeStep({ args, input: opts.input, note: opts.note }), ...r });
    if (opts.touched && opts.touched.length > 0) await this.expectEvents(opts.touched, describeStep({ args, note: opts.note }));
    return r;
  }

  /** `lease grant ...` (simple or json output): record it and return the lease ID in hex. */
  async grant(args: string[], note?: string): Promise<string> {
    const r = await this.ctl(args, { note });
    let id: string | null = null;
    const m = /lease ([0-9a-f]{16}) granted/.exec(r.stdout);
    if (m) id = m[1];
    const j = /"ID":(\d+)/.exec(r.stdout);
    if (id === null && j) id = BigInt(j[1]).toString(16).padStart(16, '0');
    if (id === null) {
      // Keep going with an ID no server hands out, so the rest of the transcript stays aligned.
      id = '7fffffffffff0000'.slice(0, 12) + this.leases.length.toString(16).padStart(4, '0');
      this.problems.push(`${describeStep({ args })}: no lease ID in output ${JSON.stringify(r.stdout + r.stderr)}`);
    }
    this.leases.push(id);
    return id;
  }

  /**
   * Start a long-running etcdctl command. With `match`, it is a watcher whose
   * expected event count grows with later `touched` keys; `expected` is its initial
   * count (history it must replay). `connect` waits until it is connected and then
   * settleMs (for watchers without --rev).
   */
  async start(
    name: string,
    args: string[],
    opts: { match?: KeyMatch; expected?: number; stdin?: boolean; connect?: boolean } = {},
  ): Promise<Background> {
    if (this.bgs.has(name)) throw new Error(`background ${name} exists`);
    const bg = new Background(name, this.endpoint, args, opts.match ?? null, opts.stdin === true);
    bg.expected = opts.expected ?? 0;
    this.bgs.set(name, bg);
    if (opts.connect) {
      const ok = await bg.waitConnected(this.port, this.waitTimeoutMs);
      if (!ok && bg.running) {
        bg.notes.push(`[harness] not connected after ${this.waitTimeoutMs} ms`);
        this.problems.push(`${name}: not connected after ${this.waitTimeoutMs} ms`);
      }
      if (ok) await sleep(this.settleMs);
    }
    return bg;
  }

  /** Start several (already described) backgrounds concurrently, sharing one settle delay. */
  async startAll(
    specs: Array<{ name: string; args: string[]; match?: KeyMatch; expected?: number; stdin?: boolean; connect?: boolean }>,
  ): Promise<Background[]> {
    const bgs = specs.map((s) => {
      const bg = new Background(s.name, this.endpoint, s.args, s.match ?? null, s.stdin === true);
      bg.expected = s.expected ?? 0;
      if (this.bgs.has(s.name)) throw new Error(`background ${s.name} exists`);
      this.bgs.set(s.name, bg);
      return bg;
    });
    let anyConnected = false;
    await Promise.all(
      specs.map(async (s, i) => {
        if (!s.connect) return;
        const bg = bgs[i];
        const ok = await bg.waitConnected(this.port, this.waitTimeoutMs);
        if (ok) anyConnected = true;
        else if (bg.running) {
          bg.notes.push(`[harness] not connected after ${this.waitTimeoutMs} ms`);
          this.problems.push(`${s.name}: not connected after ${this.waitTimeoutMs} ms`);
        }
      }),
    );
    if (anyConnected) await sleep(this.settleMs);
    return bgs;
  }

  bg(name: string): Background {
    const b = this.bgs.get(name);
    if (!b) throw new Error(`no background ${name}`);
    return b;
  }

  /** Add events for `keys` to every running watcher and wait until they have printed them. */
  async expectEvents(keys: readonly string[], after: string): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const bg of this.bgs.values()) {
      if (bg.match === null || !bg.running) continue;
      bg.expected += keys.reduce((n, k) => n + bg.match!(k), 0);
      waits.push(this.waitWatcher(bg, after));
    }
    await Promise.all(waits);
  }

  /** Wait until watcher `name` has printed its expected events (history, or after a stdin command). */
  async waitEventsOf(name: string, after: string): Promise<void> {
    await this.waitWatcher(this.bg(name), after);
  }

  private async waitWatcher(bg: Background, after: string): Promise<void> {
    if (bg.stalled || !bg.running) return;
    const want = bg.expected;
    const ok = await bg.waitUntil(() => bg.events() >= want, this.waitTimeoutMs);
    if (!ok && bg.running) {
      bg.stalled = true;
      const msg = `[harness] timed out after ${this.waitTimeoutMs} ms waiting for ${want} events (after: ${after}); saw ${bg.events()}`;
      bg.notes.push(msg);
      this.problems.push(`${bg.name}: ${msg}`);
    }
  }

  /**
   * Stop a background command (SIGKILL unless it has exited) and record its whole
   * output as one step. `collapse` folds runs of identical stdout lines into one
   * (for keep-alive's periodic lines).
   */
  async stop(name: string, opts: { collapse?: boolean; note?: string } = {}): Promise<Background> {
    const bg = this.bg(name);
    // Give output that is in flight a moment to arrive.
    if (bg.running) await sleep(100);
    await bg.stop();
    let stdout = bg.stdout;
    if (opts.collapse) stdout = collapseRepeatedLines(stdout);
    const exit = bg.killedByHarness ? KILLED_BY_HARNESS : bg.exit?.code ?? (bg.exit?.signal ? 128 : -1);
    const command =
      `[background ${name}] ` +
      describeStep({ args: [...bg.args], note: opts.note ?? (bg.killedByHarness ? 'killed by the harness' : 'exited by itself') });
    this.steps.push({
      command,
      code: exit,
      stdout,
      stderr: bg.stderr + (bg.notes.length > 0 ? '\n' + bg.notes.join('\n') : ''),
    });
    return bg;
  }

  /** Stop every background still running (not recorded). */
  async stopAllUnrecorded(): Promise<void> {
    await Promise.all([...this.bgs.values()].map((b) => b.stop()));
  }

  /** Record a harness check as a step: "ok" when it holds, the detail otherwise. */
  check(label: string, ok: boolean, detail: string): void {
    this.steps.push({ command: `[check] ${label}`, code: ok ? 0 : 1, stdout: ok ? 'ok\n' : `FAILED: ${detail}\n`, stderr: '' });
  }

  /** The normalised transcript (endpoint, IDs, term, timestamps, lease IDs, remaining TTLs). */
  transcript(): StepResult[] {
    const base = this.steps.map((s, index) => ({
      index,
      command: normalise(s.command, this.endpoint),
      code: s.code,
      stdout: normalise(s.stdout, this.endpoint),
      stderr: normalise(s.stderr, this.endpoint),
    }));
    return normaliseLeases(base, this.leases).map((s) => ({
      ...s,
      stdout: sortAttachedKeys(normaliseRemainingTtl(s.stdout)),
      stderr: sortAttachedKeys(normaliseRemainingTtl(s.stderr)),
    }));
  }
}

/** Fold runs of identical consecutive lines into one line. */
export function collapseRepeatedLines(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) if (out.length === 0 || out[out.length - 1] !== line) out.push(line);
  return out.join('\n');
}

const hex16 = (dec: string): string => BigInt(dec).toString(16).padStart(16, '0');

/** Decimal lease IDs appear only in these contexts (json, fields). */
const DEC_CONTEXTS: RegExp[] = [/("(?:ID|id|lease)":)(\d+)/g, /("(?:ID|Lease)" : )(\d+)/g];

/**
 * Name lease IDs LEASE_1, LEASE_2, ... in order of first appearance in the transcript
 * (commands included). IDs are the granted ones plus any printed by etcdctl in hex
 * ("lease <16 hex> ...", a lease list line) or decimal (json "ID"/"id"/"lease",
 * fields "ID"/"Lease").
 */
export function normaliseLeases(steps: StepResult[], granted: readonly string[]): StepResult[] {
  const texts = (s: StepResult): string[] => [s.command, s.stdout, s.stderr];
  const known = new Set<string>(granted);
  for (const s of steps) {
    for (const t of texts(s)) {
      for (const m of t.matchAll(/\blease ([0-9a-f]{16})\b/g)) known.add(m[1]);
      for (const m of t.matchAll(/^([0-9a-f]{16})$/gm)) known.add(m[1]);
      for (const re of DEC_CONTEXTS) for (const m of t.matchAll(re)) if (m[2] !== '0') known.add(hex16(m[2]));
    }
  }
  // First appearance: (step index, text index, offset), hex or decimal form.
  const first = new Map<string, number>();
  const decOf = new Map<string, string>();
  for (const id of known) decOf.set(id, BigInt('0x' + id).toString(10));
  let pos = 0;
  for (const s of steps) {
    for (const t of texts(s)) {
      for (const id of known) {
        if (first.has(id)) continue;
        let at = t.search(new RegExp(`(?<![0-9a-f])${id}(?![0-9a-f])`));
        const d = t.search(new RegExp(`(?<![0-9])${decOf.get(id)}(?![0-9])`));
        if (at < 0 || (d >= 0 && d < at)) at = d;
        if (at >= 0) first.set(id, pos + at);
      }
      pos += t.length + 1;
    }
  }
  const order = [...known].sort((a, b) => (first.get(a) ?? Infinity) - (first.get(b) ?? Infinity));
  const name = new Map(order.map((id, i) => [id, `LEASE_${i + 1}`]));
  const nameDec = new Map(order.map((id, i) => [decOf.get(id)!, `LEASE_${i + 1}`]));
  const fix = (t: string): string => {
    let r = t.replace(/(?<![0-9a-f])([0-9a-f]{16})(?![0-9a-f])/g, (m: string, id: string) => name.get(id) ?? m);
    for (const re of DEC_CONTEXTS) r = r.replace(re, (m: string, pre: string, dec: string) => (nameDec.has(dec) ? pre + nameDec.get(dec)! : m));
    return r;
  };
  return steps.map((s) => ({ ...s, command: fix(s.command), stdout: fix(s.stdout), stderr: fix(s.stderr) }));
}

/**
 * Replace a remaining TTL within [granted-5, granted] (and >= 0, granted > 0) by a
 * placeholder; leave it as printed otherwise (so a wrong value shows in the diff).
 */
export function normaliseRemainingTtl(text: string): string {
  const ok = (ttl: number, granted: number): boolean => granted > 0 && ttl >= 0 && ttl >= granted - 5 && ttl <= granted;
  let t = text.replace(/granted with TTL\((\d+)s\), remaining\((-?\d+)s\)/g, (m, g: string, r: string) =>
    ok(Number(r), Number(g)) ? `granted with TTL(${g}s), remaining(<${g}-5..${g}>s)` : m,
  );
  t = t.replace(/"ttl":(-?\d+),"granted-ttl":(\d+)/g, (m, r: string, g: string) =>
    ok(Number(r), Number(g)) ? `"ttl":<${g}-5..${g}>,"granted-ttl":${g}` : m,
  );
  t = t.replace(/"TTL" : (-?\d+)\n"GrantedTTL" : (\d+)/g, (m, r: string, g: string) =>
    ok(Number(r), Number(g)) ? `"TTL" : <${g}-5..${g}>\n"GrantedTTL" : ${g}` : m,
  );
  return t;
}

/**
 * etcd lists a lease's keys in Go map order (not deterministic even etcd vs etcd):
 * sort `attached keys([a b])` and json `"keys":["..",".."]`.
 */
export function sortAttachedKeys(text: string): string {
  let t = text.replace(/attached keys\(\[([^\]]*)\]\)/g, (_m, list: string) =>
    `attached keys([${list.split(' ').filter((k) => k !== '').sort().join(' ')}])`,
  );
  t = t.replace(/"keys":\[("[^\]]*")\]/g, (_m, list: string) => `"keys":[${list.split(',').sort().join(',')}]`);
  return t;
}
