/**
 * The process-control harness itself (bench/lib/procs.ts), exercised against real etcd:
 * start, serve, kill -9, restart on the same data dir, stop, output capture, and the
 * kill-on-exit cleanup.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { etcdctl, freePort, makeTempDir, startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers kill(0); look at /proc for its state.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

describe('bench/lib/procs', () => {
  const started: ServerProc[] = [];
  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  it('freePort hands out distinct bindable ports', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    expect(new Set(ports).size).toBe(ports.length);
    for (const p of ports) expect(p).toBeGreaterThan(0);
  });

  it('starts etcd, survives kill -9 + restart with its data, stops cleanly', async () => {
    const s = await startEtcd({ name: 'procs-test' });
    started.push(s);
    expect(s.kind).toBe('etcd');
    expect(s.endpoint).toBe(`http://127.0.0.1:${s.clientPort}`);
    expect(fs.existsSync(s.dataDir)).toBe(true);
    expect(s.output()).toContain('ready to serve client requests');

    const put = await etcdctl(s.endpoint, ['put', 'durable', 'yes']);
    expect(put).toMatchObject({ code: 0, stdout: 'OK\n' });

    const pid1 = s.pid;
    await s.kill9();
    expect(s.running).toBe(false);
    expect(s.exitStatus()?.signal).toBe('SIGKILL');
    expect(alive(pid1)).toBe(false);

    await s.restart();
    expect(s.running).toBe(true);
    expect(s.pid).not.toBe(pid1);
    const get = await etcdctl(s.endpoint, ['get', 'durable', '--print-value-only']);
    expect(get).toMatchObject({ code: 0, stdout: 'yes\n' });

    // restart() of a running server stops it first.
    const pid2 = s.pid;
    await s.restart();
    expect(s.pid).not.toBe(pid2);
    expect(alive(pid2)).toBe(false);

    const pid3 = s.pid;
    await s.stop();
    expect(s.running).toBe(false);
    // etcd re-raises SIGTERM after shutting down cleanly (cairn exits 0); never SIGKILL here.
    const st = s.exitStatus();
    expect(st?.code === 0 || st?.signal === 'SIGTERM', JSON.stringify(st)).toBe(true);
    expect(alive(pid3)).toBe(false);
    await s.stop(); // idempotent
  });

  it('reports a server that cannot start, with its output', async () => {
    await expect(startEtcd({ extraArgs: ['--no-such-flag'] })).rejects.toThrow(/exited before it was ready[\s\S]*no-such-flag/);
  });

  it('honours a given data dir', async () => {
    const dir = path.join(makeTempDir('procs-given-'), 'nested', 'data');
    const s = await startEtcd({ dataDir: dir });
    started.push(s);
    expect(s.dataDir).toBe(dir);
    expect(fs.existsSync(path.join(dir, 'member'))).toBe(true);
    await s.stop();
  });

  it('etcdctl passes stdin and reports exit codes', async () => {
    const s = await startEtcd({});
    started.push(s);
    const put = await etcdctl(s.endpoint, ['put', 'fromstdin'], { input: 'v a l' });
    expect(put.code).toBe(0);
    const get = await etcdctl(s.endpoint, ['get', 'fromstdin', '--print-value-only']);
    expect(get.stdout).toBe('v a l\n');
    const bad = await etcdctl(s.endpoint, ['get', 'x', '--rev', '99']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('Error: etcdserver: mvcc: required revision is a future revision');
    await s.stop();
  });

  it('startCairn runs `node <bin>` with etcd flags and detects the pino ready line', async () => {
    // A stand-in for dist/src/bin/cairn.js: wraps etcd and logs cairn's ready line.
    const dir = makeTempDir('procs-fakecairn-');
    const bin = path.join(dir, 'fake-cairn.js');
    fs.writeFileSync(
      bin,
      `const { spawn } = require('node:child_process');
const c = spawn('/usr/bin/etcd', process.argv.slice(2), { stdio: ['ignore', 'pipe', 'pipe'] });
let said = false;
let seen = '';
const onData = (b) => {
  process.stderr.write(b);
  seen += b.toString(); // the line may come in pieces
  if (!said && seen.includes('serve client')) {
    said = true;
    console.log(JSON.stringify({ level: 30, time: Date.now(), msg: 'ready to serve client requests' }));
  }
};
c.stdout.on('data', onData);
c.stderr.on('data', onData);
process.on('SIGTERM', () => c.kill('SIGTERM'));
c.on('exit', () => process.exit(0));
`,
    );
    const s = await startCairn({ bin, name: 'fake' });
    started.push(s);
    expect(s.kind).toBe('cairn');
    expect(s.args[0]).toBe(bin);
    expect(s.args).toContain('--initial-cluster');
    expect(s.output()).toContain('"msg":"ready to serve client requests"');
    expect((await etcdctl(s.endpoint, ['put', 'a', 'b'])).code).toBe(0);
    await s.stop();
    expect(s.exitStatus()).toEqual({ code: 0, signal: null });
  });

  it('startCairn fails clearly when the entry point is missing', async () => {
    await expect(startCairn({ bin: '/nonexistent/cairn.js' })).rejects.toThrow(/does not exist/);
  });

  it('kills its servers when the owning process exits', () => {
    // Transpile procs.ts to a temp dir and run it in a child Node process that starts
    // etcd and then exits without stopping it.
    const dir = makeTempDir('procs-exit-');
    const src = fs.readFileSync(path.join(__dirname, '..', '..', 'bench', 'lib', 'procs.ts'), 'utf8');
    const js = ts.transpileModule(src, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
    fs.writeFileSync(path.join(dir, 'procs.js'), js);
    fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"cairn"}');
    const script =
      "const p = require('./procs.js');" +
      'p.startEtcd({}).then((s) => { console.log(JSON.stringify({ pid: s.pid, dataDir: s.dataDir })); process.exit(0); },' +
      ' (e) => { console.error(e); process.exit(2); });';
    const r = spawnSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout.trim()) as { pid: number; dataDir: string };
    expect(info.pid).toBeGreaterThan(0);
    // SIGKILL is asynchronous; give the kernel a moment.
    const deadline = Date.now() + 5_000;
    while (alive(info.pid) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    expect(alive(info.pid)).toBe(false);
    expect(fs.existsSync(info.dataDir)).toBe(false);
  });
});
