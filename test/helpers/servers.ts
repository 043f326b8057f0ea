/**
 * Which server an end-to-end test drives as "cairn".
 *
 * CAIRN_COMPAT_AGAINST=etcd makes the side under test a second real etcd: the golden
 * comparisons then run etcd-vs-etcd, which proves the normalisation is sufficient and
 * the command sequences deterministic (useful while cairn is not built yet).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot, startCairn, startEtcd, type ServerProc, type StartOptions } from '../../bench/lib/procs';

export type Target = 'cairn' | 'etcd';

export function targetUnderTest(): Target {
  const v = (process.env.CAIRN_COMPAT_AGAINST ?? 'cairn').toLowerCase();
  if (v !== 'cairn' && v !== 'etcd') throw new Error(`CAIRN_COMPAT_AGAINST must be "cairn" or "etcd", not ${JSON.stringify(v)}`);
  return v;
}

/** Start the server under test (cairn unless CAIRN_COMPAT_AGAINST=etcd). */
export function startUnderTest(opts: StartOptions = {}): Promise<ServerProc> {
  return targetUnderTest() === 'etcd' ? startEtcd(opts) : startCairn(opts);
}

/** Start several servers concurrently; if one fails, stop the others and rethrow. */
export async function startAll(starters: Array<() => Promise<ServerProc>>): Promise<ServerProc[]> {
  const settled = await Promise.allSettled(starters.map((s) => s()));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await Promise.all(
      settled.map((s) => (s.status === 'fulfilled' ? s.value.stop() : Promise.resolve())),
    );
    throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
  }
  return settled.map((s) => (s as PromiseFulfilledResult<ServerProc>).value);
}

/**
 * Starts dist's cairn with exactly `args` (no generated flags: for what startCairn cannot
 * express, such as https client URLs), adds it to `started` for the caller to kill, and
 * resolves once it says it is ready with a reader of everything it has printed.
 */
export async function spawnCairn(args: string[], started: ChildProcess[], readyTimeoutMs = 20_000): Promise<() => string> {
  const child = spawn(process.execPath, [join(repoRoot(), 'dist', 'src', 'bin', 'cairn.js'), ...args]);
  started.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + readyTimeoutMs;
  while (!out.includes('ready to serve client requests')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`cairn did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return () => out;
}
