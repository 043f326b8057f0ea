import { spawn, type ChildProcess } from 'node:child_process';
import { ETCDCTL_BIN } from '../../../bench/lib/procs';

// A long-running etcdctl (`etcdctl lock`, `etcdctl elect`) whose stdout is read line by line.

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export class EtcdctlProc {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  private partial = '';
  private waiters: Array<() => void> = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(endpoint: string, args: string[]) {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_')) env[k] = v;
    env.ETCDCTL_API = '3';
    this.child = spawn(ETCDCTL_BIN, ['--endpoints', endpoint, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.child.stdout?.on('data', (b: Buffer) => {
      const parts = (this.partial + b.toString('utf8')).split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      for (const w of this.waiters.splice(0)) w();
    });
    this.child.stderr?.on('data', (b: Buffer) => (this.stderr += b.toString('utf8')));
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        for (const w of this.waiters.splice(0)) w();
        resolve({ code, signal });
      }),
    );
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Wait until at least n lines were printed; returns them. */
  async waitLines(n: number, timeoutMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < n) {
      if (!this.running && this.lines.length < n) throw new Error(`etcdctl exited: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`etcdctl printed ${JSON.stringify(this.lines)} within ${timeoutMs} ms; stderr ${this.stderr}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return this.lines.slice(0, n);
  }

  /** SIGINT (etcdctl unlocks / resigns on it) and wait for the exit. */
  async interrupt(): Promise<void> {
    if (this.running) this.child.kill('SIGINT');
    await this.exited;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}

/** Check that no two [start, end] intervals overlap. */
export function assertNoOverlap(intervals: Array<{ who: string; start: number; end: number }>): void {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].start < sorted[i - 1].end) {
      throw new Error(`lock held by ${sorted[i - 1].who} [${sorted[i - 1].start}, ${sorted[i - 1].end}] and ${sorted[i].who} [${sorted[i].start}, ${sorted[i].end}] at once`);
    }
  }
}
