/**
 * Runs the cairn binary with an arbitrary command line, environment and working
 * directory (bench/lib/procs.ts always passes --name / --data-dir / URL flags, which the
 * command-line tests must control themselves). ETCD_* / ETCDCTL_* of this process are
 * never inherited. Every process started here is SIGKILLed at process exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cairnBin, freePort } from '../../bench/lib/procs';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the process had to be killed after timeoutMs. */
  timedOut: boolean;
}

export interface CliOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

const live = new Set<ChildProcess>();
let hooked = false;
function hook(): void {
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

function cleanEnv(extra: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCD_') && !k.startsWith('ETCDCTL_')) env[k] = v;
  return { ...env, ...(extra ?? {}) };
}

export class CairnCli {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  private readonly exited: Promise<void>;

  constructor(args: string[], opts: CliOptions = {}) {
    hook();
    this.child = spawn(process.execPath, [cairnBin(), ...args], {
      env: cleanEnv(opts.env),
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(this.child);
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString('utf8')));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString('utf8')));
    this.exited = new Promise((resolve) => {
      this.child.once('close', (code, signal) => {
        live.delete(this.child);
        this.exitInfo = { code, signal };
        resolve();
      });
    });
  }

  get output(): string {
    return this.stdout + this.stderr;
  }

  get exit(): { code: number | null; signal: NodeJS.Signals | null } | null {
    return this.exitInfo;
  }

  /** Resolves when the output matches, rejects if the process exits first or on timeout. */
  async waitFor(re: RegExp, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.output)) {
      if (this.exitInfo) throw new Error(`cairn exited (${JSON.stringify(this.exitInfo)}) before printing ${re}\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`cairn did not print ${re} within ${timeoutMs} ms\n${this.output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Waits for exit (SIGKILL after timeoutMs); returns the exit info. */
  async waitExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.child.kill('SIGKILL');
    }, timeoutMs);
    await this.exited;
    clearTimeout(timer);
    return { ...this.exitInfo!, timedOut };
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }
}

/** Runs cairn to completion (for commands that should exit by themselves). */
export async function runCairn(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  const p = new CairnCli(args, opts);
  const e = await p.waitExit(opts.timeoutMs ?? 15_000);
  return { code: e.code, signal: e.signal, stdout: p.stdout, stderr: p.stderr, timedOut: e.timedOut };
}

/** Free loopback client and peer URLs, so a stray start never lands on 2379/2380. */
export async function loopbackUrls(): Promise<{ client: string; peer: string; clientPort: number }> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  return { client: `http://127.0.0.1:${clientPort}`, peer: `http://127.0.0.1:${peerPort}`, clientPort };
}
