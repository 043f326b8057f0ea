/**
 * Colour and progress bars only at a terminal: under a pseudo-terminal (util-linux `script`) errors and
 * watch event types are coloured; through pipes, or with NO_COLOR, the bytes are
 * etcdctl's.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, etcdctl, makeTempDir, startCairn } from '../../bench/lib/procs';
import { CAIRNCTL, runTool } from './golden-lib';

afterAll(async () => {
  await cleanupAll();
});

/** Run cairnctl on a pseudo-terminal; returns what the terminal showed. */
function onTty(args: string[], env: NodeJS.ProcessEnv = {}): string {
  const cmd = [process.execPath, CAIRNCTL, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  try {
    return execFileSync('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
  } catch (e) {
    return String((e as { stdout?: string }).stdout ?? '');
  }
}

describe('cairnctl colour', () => {
  it('colours errors on a terminal only', () => {
    expect(onTty(['get'])).toContain('\x1b[31mError:\x1b[0m get command needs one argument');
    expect(onTty(['get'], { NO_COLOR: '1' })).not.toContain('\x1b[');
  });

  it('pipes get no colour', async () => {
    const r = await runTool('cairnctl', ['get']);
    expect(r.stderr).toBe('Error: get command needs one argument as key and an optional argument as range_end\n');
  });

  it('colours watch event types on a terminal only', async () => {
    const srv = await startCairn();
    await etcdctl(srv.endpoint, ['put', 'c', '1']);
    await etcdctl(srv.endpoint, ['del', 'c']);
    const tty = onTty(['--endpoints', srv.endpoint, 'watch', 'c', '--rev', '1', '--', 'sh', '-c', 'kill $PPID']);
    expect(tty).toContain('\x1b[32mPUT\x1b[0m');
    expect(tty).toContain('\x1b[31mDELETE\x1b[0m');
    const piped = await runTool('cairnctl', ['--endpoints', srv.endpoint, 'watch', 'c', '--rev', '1', '--', 'sh', '-c', 'kill $PPID']);
    expect(piped.stdout).toBe('PUT\nc\n1\nDELETE\nc\n\n');
  }, 60_000);
});

describe('cairnctl progress bars', () => {
  it('snapshot save and restore draw a progress bar on a terminal only', async () => {
    const srv = await startCairn();
    for (let i = 0; i < 50; i++) await etcdctl(srv.endpoint, ['put', `p${i}`, 'x'.repeat(2000)]);
    const dir = makeTempDir('cairnctl-progress-');
    const tty = onTty(['--endpoints', srv.endpoint, 'snapshot', 'save', path.join(dir, 'a.db')]);
    expect(tty).toMatch(/\r\x1b\[2Kdownloading [0-9.]+ kB/);
    expect(tty).toContain(`Snapshot saved at ${path.join(dir, 'a.db')}`);
    const piped = await runTool('cairnctl', ['--endpoints', srv.endpoint, 'snapshot', 'save', path.join(dir, 'b.db')]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain('\x1b[2K');
    const restored = onTty(['snapshot', 'restore', path.join(dir, 'b.db'), '--data-dir', path.join(dir, 'r1')]);
    expect(restored).toMatch(/\r\x1b\[2Krestoring \[#+ *\] +\d+% /);
    const restoredPiped = await runTool('cairnctl', ['snapshot', 'restore', path.join(dir, 'b.db'), '--data-dir', path.join(dir, 'r2')]);
    expect(restoredPiped.code, restoredPiped.stderr).toBe(0);
    expect(restoredPiped.stderr).not.toContain('\x1b[2K');
  }, 60_000);
});
