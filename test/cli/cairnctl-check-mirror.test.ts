/**
 * check perf and make-mirror. Argument errors side by side with etcdctl; a short
 * `check perf` run (CAIRNCTL_CHECK_PERF_SECONDS: etcdctl always runs a minute) printing
 * etcdctl's verdict lines; make-mirror by etcdctl and by cairnctl from the same source
 * into two fresh destinations, which must end up holding the same keys.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ETCDCTL_BIN, cleanupAll, etcdctl, startCairn } from '../../bench/lib/procs';
import { CAIRNCTL, expectSame, runSteps, runTool, type GStep } from './golden-lib';

afterAll(async () => {
  await cleanupAll();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('cairnctl check perf / make-mirror', () => {
  it('argument errors as etcdctl reports them', async () => {
    const srv = await startCairn();
    await etcdctl(srv.endpoint, ['put', '/etcdctl-check-perf/x', 'y']);
    const steps: GStep[] = [
      { args: ['check', 'perf', '--load', 'huge'] },
      { args: ['check', 'perf'], note: 'the prefix has keys' },
      { args: ['check', 'perf', '--prefix', '/etcdctl-check-perf/x'] },
      { args: ['make-mirror'] },
      { args: ['make-mirror', 'a', 'b'] },
      { args: ['make-mirror', '--prefix', 'p', '--dest-prefix', 'q', '--no-dest-prefix', srv.endpoint] },
    ];
    const g = ['--endpoints', srv.endpoint];
    expectSame(await runSteps('etcdctl', g, steps, [srv.endpoint]), await runSteps('cairnctl', g, steps, [srv.endpoint]), 'check-errors');
  }, 60_000);

  it('check perf prints etcdctl\'s verdict lines and leaves no keys behind', async () => {
    const srv = await startCairn();
    const r = await runTool('cairnctl', ['--endpoints', srv.endpoint, 'check', 'perf', '--auto-compact', '--auto-defrag'], { env: { CAIRNCTL_CHECK_PERF_SECONDS: '2' } });
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^Compacting with revision \d+$/);
    expect(lines[1]).toMatch(/^Compacted with revision \d+$/);
    expect(lines.splice(2, 2)).toEqual([`Defragmenting "${srv.endpoint}"`, `Defragmented "${srv.endpoint}"`]);
    expect(lines[2]).toMatch(/^(PASS: Throughput is|FAIL: Throughput too low:) \d+ writes\/s$/);
    expect(lines[3]).toMatch(/^(PASS: Slowest request took|Slowest request took too long:) \d+\.\d{6}s$/);
    expect(lines[4]).toMatch(/^(PASS: Stddev is|Stddev too high:) \d+\.\d{6}s$/);
    const verdict = lines[5];
    expect(verdict === 'PASS' ? 0 : 1).toBe(r.code);
    expect(verdict === 'PASS').toBe(lines.slice(2, 5).every((l) => l.startsWith('PASS')));
    expect((await etcdctl(srv.endpoint, ['get', '--prefix', '/etcdctl-check-perf/', '--keys-only'])).stdout).toBe('');
  }, 60_000);

  it('check datascale prints what etcdctl prints (but the measured memory and etcdctl\'s progress bar)', async () => {
    const srv = await startCairn();
    const g = ['--endpoints', srv.endpoint];
    // etcdctl draws its bar even into a pipe; cairnctl only on a terminal.
    const project = (r: { code: number; stdout: string; stderr: string }): string =>
      `${r.code}\n${r.stdout.replace(/^[^\n]* \/ 10000 [^\n]*\n?/m, '').replace(/-?[0-9.]+ MB/, '<N> MB')}${r.stderr}`;
    const steps: GStep[] = [{ args: ['check', 'datascale', '--auto-compact'], project }, { args: ['get', '--prefix', '/etcdctl-check-datascale/', '--keys-only'] }];
    const e = await runSteps('etcdctl', g, steps, [srv.endpoint]);
    const c = await runSteps('cairnctl', g, steps, [srv.endpoint]);
    for (const r of [...e, ...c]) r.stdout = r.stdout.replace(/with revision \d+/g, 'with revision <REV>');
    expectSame(e, c, 'datascale');
    expect(c[0].stdout).toContain('PASS: Approximate system memory used : <N> MB.');
  }, 120_000);

  it('make-mirror copies the same keys as etcdctl make-mirror, then follows changes', async () => {
    const [src, d1, d2] = await Promise.all([startCairn(), startCairn(), startCairn()]);
    for (let i = 0; i < 30; i++) await etcdctl(src.endpoint, ['put', `a/${i}`, `v${i}`]);
    await etcdctl(src.endpoint, ['put', 'other', 'x']);
    const spawnMirror = (bin: 'etcdctl' | 'cairnctl', dest: string): { child: ChildProcess; out: () => string } => {
      const args = ['--endpoints', src.endpoint, 'make-mirror', '--prefix', 'a/', '--dest-prefix', 'b/', dest];
      const env = { ...process.env, ETCDCTL_API: '3', CAIRNCTL_MIRROR_REPORT_MS: '300' };
      const child = bin === 'etcdctl' ? spawn(ETCDCTL_BIN, args, { env }) : spawn(process.execPath, [CAIRNCTL, ...args], { env });
      let o = '';
      child.stdout!.on('data', (d: Buffer) => (o += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (o += d.toString()));
      return { child, out: () => o };
    };
    const m1 = spawnMirror('etcdctl', d1.endpoint);
    const m2 = spawnMirror('cairnctl', d2.endpoint);
    await sleep(2000);
    await etcdctl(src.endpoint, ['put', 'a/new', 'n']);
    await etcdctl(src.endpoint, ['del', 'a/3']);
    await etcdctl(src.endpoint, ['txn'], { input: '\nput a/t1 1\nput a/t2 2\ndel a/4\n\n\n' });
    await sleep(2000);
    const dump = async (ep: string): Promise<string> => (await etcdctl(ep, ['get', '--prefix', ''])).stdout;
    const [x, y] = [await dump(d1.endpoint), await dump(d2.endpoint)];
    m1.child.kill('SIGTERM');
    m2.child.kill('SIGTERM');
    expect(y).toBe(x);
    expect(x).toContain('b/new\nn\n');
    expect(x).not.toContain('b/3\n');
    expect(x).not.toContain('other');
    expect(x).toContain('b/t2\n2\n');
    expect(x).not.toContain('b/4\n');
    // The running count every interval: 30 copied, then 5 changes.
    expect(m2.out().trim().split('\n').pop()).toBe('35');
  }, 60_000);
});
