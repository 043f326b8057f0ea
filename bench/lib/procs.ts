/**
 * Process control for end-to-end tests and benchmarks: start real `etcd` and real
 * `cairn` members on loopback, wait until they serve, stop / kill -9 / restart them,
 * and drive them with etcd's own `etcdctl`.
 *
 * Every process started here is killed (SIGKILL) when the current Node process exits,
 * and the temporary data directories created here are removed then too (set
 * CAIRN_KEEP_DATA=1 to keep them for debugging).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';
export const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';

export type ServerKind = 'etcd' | 'cairn';

export interface StartOptions {
  /** Data directory; a fresh temp dir (removed at process exit) when omitted. */
  dataDir?: string;
  /** Member name (default "default"). */
  name?: string;
  /** Extra command-line arguments, appended after the generated ones. */
  extraArgs?: string[];
  /** Extra environment for the server (ETCD_* / ETCDCTL_* are not inherited). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait for readiness (default 20 s). */
  readyTimeoutMs?: number;
  /**
   * Start this process as one member of a multi-member cluster: explicit ports (no retry
   * on a port clash, the other members depend on them), `--initial-cluster <initialCluster>`
   * instead of the one-member default, plus `--initial-cluster-state new` and
   * `--initial-cluster-token <token>`. Such a member only becomes ready once a quorum is up,
   * so start all members concurrently (see startMember).
   */
  cluster?: ClusterMemberSpec;
}

export interface ClusterMemberSpec {
  clientPort: number;
  peerPort: number;
  /** name=http://127.0.0.1:peerPort,... for every member. */
  initialCluster: string;
  token: string;
}

export interface CairnStartOptions extends StartOptions {
  /** Path of the cairn entry point (default: $CAIRN_BIN or <repo>/dist/src/bin/cairn.js). */
  bin?: string;
  /** Options for node itself, before the entry point (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
}

export interface ServerProc {
  readonly kind: ServerKind;
  readonly name: string;
  /** http://127.0.0.1:<clientPort> */
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  /** The full argument vector (after the executable). */
  readonly args: readonly string[];
  /** pid of the current incarnation (changes on restart). */
  readonly pid: number;
  /** True while the current incarnation has not exited. */
  readonly running: boolean;
  /** SIGTERM, wait for exit; SIGKILL after 10 s. Resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit. */
  kill9(): Promise<void>;
  /** Stop if running, start again with the same arguments and data dir, wait until ready. */
  restart(): Promise<void>;
  /** Captured stdout+stderr of all incarnations, the last 1 MiB. */
  output(): string;
  /** Exit code / signal of the last incarnation, or null while running. */
  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null;
}

export interface EtcdctlOptions {
  /** Written to etcdctl's stdin (stdin is always closed, so etcdctl never waits on it). */
  input?: string | Buffer;
  /** Extra environment (ETCDCTL_* of this process is not inherited). */
  env?: NodeJS.ProcessEnv;
  /** Kill etcdctl after this long (default 30 s); the result then has code -1. */
  timeoutMs?: number;
}

export interface EtcdctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

// ---------------------------------------------------------------------------------
// Bookkeeping and cleanup

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooksInstalled = false;

function killAllSync(): void {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

function removeTempDirsSync(): void {
  if (process.env.CAIRN_KEEP_DATA === '1') return;
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  tempDirs.clear();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', () => {
    killAllSync();
    removeTempDirsSync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      removeTempDirsSync();
      process.removeListener(sig, onSignal);
      // Only re-raise when nobody else handles the signal (keep default semantics).
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** SIGKILL every process started by this module and remove its temp dirs. */
export async function cleanupAll(): Promise<void> {
  const waits: Promise<void>[] = [];
  for (const child of live) {
    waits.push(waitExit(child, 10_000));
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  await Promise.all(waits);
  removeTempDirsSync();
}

/** A fresh temp directory, removed at process exit (unless CAIRN_KEEP_DATA=1). */
export function makeTempDir(prefix: string): string {
  installHooks();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

// ---------------------------------------------------------------------------------
// Ports

const handedOut = new Set<number>();

function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: unexpected address ' + String(addr)));
        return;
      }
      const port = addr.port;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/**
 * A currently free TCP port on 127.0.0.1 (bind port 0, read it, close). Never returns
 * the same port twice within one process, so several servers can be started at once.
 */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await bindEphemeral();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: no new free port after 50 attempts');
}

// ---------------------------------------------------------------------------------
// etcdctl

function childEnv(extra: NodeJS.ProcessEnv | undefined, dropPrefixes: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (dropPrefixes.some((p) => k.startsWith(p))) continue;
    env[k] = v;
  }
  return { ...env, ...(extra ?? {}) };
}

/** Run `etcdctl --endpoints <endpoint> ...args`. Never rejects for a non-zero exit. */
export function etcdctl(endpoint: string, args: string[], opts: EtcdctlOptions = {}): Promise<EtcdctlResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const env = childEnv({ ETCDCTL_API: '3', ...(opts.env ?? {}) }, ['ETCDCTL_']);
  return new Promise((resolve, reject) => {
    const child = spawn(ETCDCTL_BIN, ['--endpoints', endpoint, ...args], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => {
      // etcdctl may exit before reading all of its input; ignore EPIPE.
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      let stderr = Buffer.concat(err).toString('utf8');
      if (timedOut) stderr += `\n[procs] etcdctl killed after ${timeoutMs} ms`;
      resolve({
        code: timedOut ? -1 : code ?? (signal ? 128 : -1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr,
      });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

// ---------------------------------------------------------------------------------
// Servers

const OUTPUT_LIMIT = 1024 * 1024;
const READY_MARKER = 'ready to serve client requests';

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Find the repository root (the directory holding cairn's package.json). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        const parsed: unknown = JSON.parse(fs.readFileSync(pkg, 'utf8'));
        if (typeof parsed === 'object' && parsed !== null && (parsed as { name?: unknown }).name === 'cairn') {
          return dir;
        }
      } catch {
        // keep looking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('procs: cannot find the cairn repository root from ' + __dirname);
    dir = parent;
  }
}

interface Launch {
  kind: ServerKind;
  command: string;
  /** Arguments before the etcd-style flags (e.g. the script path for node). */
  prefixArgs: string[];
  opts: StartOptions;
  /** Accept the log marker as readiness (else only the etcdctl poll counts). */
  markerReady: boolean;
}

class Server implements ServerProc {
  readonly kind: ServerKind;
  readonly name: string;
  readonly endpoint: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly args: readonly string[];
  private readonly command: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly readyTimeoutMs: number;
  private readonly markerReady: boolean;
  private child: ChildProcess | null = null;
  private buf = '';
  private lastExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(l: Launch, clientPort: number, peerPort: number, dataDir: string) {
    this.kind = l.kind;
    this.name = l.opts.name ?? 'default';
    this.clientPort = clientPort;
    this.peerPort = peerPort;
    this.dataDir = dataDir;
    this.endpoint = `http://127.0.0.1:${clientPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    this.command = l.command;
    this.args = [
      ...l.prefixArgs,
      '--name', this.name,
      '--data-dir', dataDir,
      '--listen-client-urls', this.endpoint,
      '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      ...(l.opts.cluster === undefined
        ? ['--initial-cluster', `${this.name}=${peerUrl}`]
        : [
            '--initial-cluster', l.opts.cluster.initialCluster,
            '--initial-cluster-state', 'new',
            '--initial-cluster-token', l.opts.cluster.token,
          ]),
      ...(l.opts.extraArgs ?? []),
    ];
    this.env = childEnv(l.opts.env, ['ETCD_', 'ETCDCTL_']);
    this.readyTimeoutMs = l.opts.readyTimeoutMs ?? 20_000;
    this.markerReady = l.markerReady;
  }

  get pid(): number {
    return this.child?.pid ?? -1;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.buf.length > OUTPUT_LIMIT ? this.buf.slice(this.buf.length - OUTPUT_LIMIT) : this.buf;
  }

  exitStatus(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.running ? null : this.lastExit;
  }

  private append(chunk: Buffer): void {
    this.buf += chunk.toString('utf8');
    if (this.buf.length > 2 * OUTPUT_LIMIT) this.buf = this.buf.slice(this.buf.length - OUTPUT_LIMIT);
  }

  /** Spawn one incarnation and wait until it serves. */
  async launch(): Promise<void> {
    installHooks();
    const markFrom = this.buf.length;
    const child = spawn(this.command, [...this.args], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.lastExit = null;
    live.add(child);
    let spawnError: Error | null = null;
    child.once('error', (e) => {
      spawnError = e;
    });
    child.stdout?.on('data', (b: Buffer) => this.append(b));
    child.stderr?.on('data', (b: Buffer) => this.append(b));
    child.once('exit', (code, signal) => {
      live.delete(child);
      this.lastExit = { code, signal };
    });

    // Offset of this incarnation's output within buf, robust against trimming.
    const startLen = markFrom;
    const trimmedSince = (): string => {
      // If buf was trimmed since launch, fall back to scanning all of it.
      return this.buf.length >= startLen ? this.buf.slice(startLen) : this.buf;
    };

    const deadline = Date.now() + this.readyTimeoutMs;
    let polling: Promise<boolean> | null = null;
    let pollOk = false;
    for (;;) {
      if (spawnError !== null) {
        throw new Error(`${this.kind}: failed to spawn ${this.command}: ${(spawnError as Error).message}`);
      }
      if (!this.running && child.pid !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
        await sleep(50); // let the last output arrive
        throw new Error(
          `${this.kind} exited before it was ready (code ${String(child.exitCode)}, signal ${String(child.signalCode)})\n` +
            `command: ${this.command} ${this.args.join(' ')}\noutput:\n${tail(trimmedSince(), 8000)}`,
        );
      }
      if (this.markerReady && trimmedSince().includes(READY_MARKER)) return;
      if (pollOk) return;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await waitExit(child, 5_000);
        throw new Error(
          `${this.kind} not ready after ${this.readyTimeoutMs} ms\n` +
            `command: ${this.command} ${this.args.join(' ')}\noutput:\n${tail(trimmedSince(), 8000)}`,
        );
      }
      if (polling === null) {
        polling = etcdctl(this.endpoint, ['--dial-timeout=1s', '--command-timeout=1s', 'get', 'procs-readiness-probe'], {
          timeoutMs: 3_000,
        })
          .then((r) => r.code === 0)
          .catch(() => false);
        void polling.then((ok) => {
          if (ok) pollOk = true;
          polling = null;
        });
      }
      await sleep(50);
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child === null || !this.running) return;
    const exited = waitExit(child, 10_000);
    child.kill('SIGTERM');
    await exited;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await waitExit(child, 10_000);
    }
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (child === null || !this.running) return;
    const exited = waitExit(child, 10_000);
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }
}

function tail(s: string, n: number): string {
  return s.length > n ? '...' + s.slice(s.length - n) : s;
}

export function isPortClash(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : String(err);
  return /address already in use|EADDRINUSE/i.test(msg);
}

async function startServer(l: Launch): Promise<ServerProc> {
  installHooks();
  if (l.opts.dataDir !== undefined) fs.mkdirSync(l.opts.dataDir, { recursive: true, mode: 0o700 });
  const cluster = l.opts.cluster;
  if (cluster !== undefined) {
    // Fixed ports: the caller owns the retry (all members must be restarted on new ports).
    const srv = new Server(l, cluster.clientPort, cluster.peerPort, l.opts.dataDir ?? makeTempDir(`${l.kind}-${l.opts.name ?? 'member'}-`));
    await srv.launch();
    return srv;
  }
  let lastErr: unknown = null;
  // Retry on a port clash (another process took the port between freePort and bind).
  // A retry gets a fresh temp dir, so no member state from the failed ports survives.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dataDir = l.opts.dataDir ?? makeTempDir(`${l.kind}-`);
    const clientPort = await freePort();
    const peerPort = await freePort();
    const srv = new Server(l, clientPort, peerPort, dataDir);
    try {
      await srv.launch();
      return srv;
    } catch (e) {
      lastErr = e;
      if (!isPortClash(e)) throw e;
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}

/** Start /usr/bin/etcd as a one-member cluster on free loopback ports; resolves once it serves. */
export function startEtcd(opts: StartOptions = {}): Promise<ServerProc> {
  return startServer({ kind: 'etcd', command: ETCD_BIN, prefixArgs: [], opts, markerReady: true });
}

/** Path of the cairn server entry point. */
export function cairnBin(): string {
  return process.env.CAIRN_BIN ?? path.join(repoRoot(), 'dist', 'src', 'bin', 'cairn.js');
}

/** Start `node dist/src/bin/cairn.js` with etcd's flags; resolves once it serves. */
export async function startCairn(opts: CairnStartOptions = {}): Promise<ServerProc> {
  const bin = opts.bin ?? cairnBin();
  if (!fs.existsSync(bin)) {
    throw new Error(`cairn entry point ${bin} does not exist (run \`npm run build\` first)`);
  }
  const prefixArgs = [...(opts.nodeArgs ?? []), bin];
  return startServer({ kind: 'cairn', command: process.execPath, prefixArgs, opts, markerReady: true });
}

/**
 * Start one member of a multi-member etcd or cairn cluster (`opts.cluster` required:
 * explicit ports and --initial-cluster). Resolves once the member serves, which for a new
 * cluster needs a quorum: start every member concurrently (Promise.all) and then wait for
 * an agreed leader. Stopped/cleaned up like every other process of this module.
 */
export function startMember(kind: ServerKind, opts: CairnStartOptions & { cluster: ClusterMemberSpec }): Promise<ServerProc> {
  return kind === 'etcd' ? startEtcd(opts) : startCairn(opts);
}
