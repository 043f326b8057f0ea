/**
 * The cairn binary's command line: etcd's flags, ETCD_* environment variables and
 * --config-file, the default data dir, clean exit on SIGTERM / SIGINT, and the flags that
 * are refused until their feature exists (TLS, more than one member).
 *
 *   npx vitest run test/e2e/cli-flags.test.ts        (needs `npm run build`)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { etcdctl, makeTempDir, startCairn } from '../../bench/lib/procs';
import { CAIRN_VERSION, ETCD_API_VERSION } from '../../src/version';
import { CairnCli, loopbackUrls, runCairn } from '../helpers/cli';
import { b, RawKV } from '../helpers/raw-grpc';

const READY = /ready to serve client requests/;

/** Flags that keep a stray start off the default ports. */
async function safeFlags(name = 'default'): Promise<{ args: string[]; client: string }> {
  const u = await loopbackUrls();
  return {
    client: u.client,
    args: [
      '--listen-client-urls', u.client,
      '--advertise-client-urls', u.client,
      '--listen-peer-urls', u.peer,
      '--initial-advertise-peer-urls', u.peer,
      '--initial-cluster', `${name}=${u.peer}`,
    ],
  };
}

describe('cairn command line', () => {
  it('--version prints cairn\'s version and the etcd API version, and exits 0', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    const r = await runCairn(['--version'], { cwd: makeTempDir('cairn-cli-') });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(pkg.version);
    expect(r.stdout).toContain(CAIRN_VERSION);
    expect(r.stdout).toMatch(/etcd API Version: 3\.\d+/);
    expect(r.stdout).toContain(ETCD_API_VERSION);
  });

  it('an unknown flag exits non-zero naming it', async () => {
    const cwd = makeTempDir('cairn-cli-');
    const { args } = await safeFlags();
    const r = await runCairn([...args, '--no-such-flag', 'x'], { cwd });
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain('no-such-flag');
    expect(fs.existsSync(path.join(cwd, 'default.cairn'))).toBe(false);
  });

  it('a bad value (--max-txn-ops abc) exits non-zero naming the flag', async () => {
    const cwd = makeTempDir('cairn-cli-');
    const { args } = await safeFlags();
    const r = await runCairn([...args, '--max-txn-ops', 'abc'], { cwd });
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('max-txn-ops');
    expect(r.stderr).toContain('abc');
  });

  it('a flag given both on the command line and as ETCD_* is an error naming both', async () => {
    const cwd = makeTempDir('cairn-cli-');
    const { args } = await safeFlags('cli');
    const r = await runCairn([...args, '--name', 'cli'], { cwd, env: { ETCD_NAME: 'env' } });
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('ETCD_NAME');
    expect(r.stderr).toMatch(/-name\b/);
  });

  it('honours ETCD_NAME and ETCD_DATA_DIR (and the other ETCD_* URL variables)', async () => {
    const cwd = makeTempDir('cairn-cli-');
    const dataDir = path.join(makeTempDir('cairn-cli-'), 'from-env');
    const u = await loopbackUrls();
    const p = new CairnCli([], {
      cwd,
      env: {
        ETCD_NAME: 'envmember',
        ETCD_DATA_DIR: dataDir,
        ETCD_LISTEN_CLIENT_URLS: u.client,
        ETCD_ADVERTISE_CLIENT_URLS: u.client,
        ETCD_LISTEN_PEER_URLS: u.peer,
        ETCD_INITIAL_ADVERTISE_PEER_URLS: u.peer,
        ETCD_INITIAL_CLUSTER: `envmember=${u.peer}`,
      },
    });
    try {
      await p.waitFor(READY);
      expect(fs.existsSync(dataDir)).toBe(true);
      expect(fs.readdirSync(dataDir).length).toBeGreaterThan(0);
      expect(fs.existsSync(path.join(cwd, 'default.cairn'))).toBe(false);
      expect(fs.existsSync(path.join(cwd, 'envmember.cairn'))).toBe(false);
      expect(p.output).toContain('envmember');
      const put = await etcdctl(u.client, ['put', 'env-key', 'env-value']);
      expect(put.code).toBe(0);
      const get = await etcdctl(u.client, ['get', 'env-key', '--print-value-only']);
      expect(get.stdout.trim()).toBe('env-value');
    } finally {
      p.signal('SIGTERM');
      await p.waitExit();
    }
    expect(p.exit?.code).toBe(0);
  });

  it('honours --config-file with etcd YAML keys', async () => {
    const dir = makeTempDir('cairn-cli-');
    const dataDir = path.join(dir, 'yaml-data');
    const u = await loopbackUrls();
    const cfg = path.join(dir, 'cairn.yaml');
    fs.writeFileSync(
      cfg,
      [
        '# etcd configuration file keys',
        'name: yamlmember',
        `data-dir: ${dataDir}`,
        `listen-client-urls: ${u.client}`,
        `advertise-client-urls: ${u.client}`,
        `listen-peer-urls: ${u.peer}`,
        `initial-advertise-peer-urls: ${u.peer}`,
        `initial-cluster: yamlmember=${u.peer}`,
        "initial-cluster-state: 'new'",
        'max-txn-ops: 4',
        '',
      ].join('\n'),
    );
    const p = new CairnCli(['--config-file', cfg], { cwd: dir });
    const kv = new RawKV(u.client);
    try {
      await p.waitFor(READY);
      expect(fs.existsSync(dataDir)).toBe(true);
      expect(p.output).toContain('yamlmember');
      const ops = (n: number) => Array.from({ length: n }, (_, i) => ({ requestPut: { key: b(`y${i}`), value: b('v') } }));
      const tooMany = await kv.tryCall('Txn', { success: ops(5) });
      expect(tooMany).toEqual({ ok: false, code: 3, details: 'etcdserver: too many operations in txn request' });
      const fine = await kv.tryCall('Txn', { success: ops(4) });
      expect(fine.ok).toBe(true);
    } finally {
      kv.close();
      p.signal('SIGTERM');
      await p.waitExit();
    }
    expect(p.exit?.code).toBe(0);
  });

  it('defaults the data dir to default.cairn in the working directory', async () => {
    const cwd = makeTempDir('cairn-cli-');
    const { args, client } = await safeFlags();
    const p = new CairnCli(args, { cwd });
    try {
      await p.waitFor(READY);
      const dd = path.join(cwd, 'default.cairn');
      expect(fs.existsSync(dd)).toBe(true);
      expect(fs.statSync(dd).isDirectory()).toBe(true);
      expect(fs.readdirSync(dd).length).toBeGreaterThan(0);
      const put = await etcdctl(client, ['put', 'k', 'v']);
      expect(put.code).toBe(0);
    } finally {
      p.signal('SIGTERM');
      await p.waitExit();
    }
    expect(p.exit?.code).toBe(0);
  });

  it('SIGTERM makes it exit 0, and the data survives the restart', async () => {
    const srv = await startCairn();
    const put = await etcdctl(srv.endpoint, ['put', 'sigterm-key', 'kept']);
    expect(put.code).toBe(0);
    await srv.stop();
    expect(srv.exitStatus()).toEqual({ code: 0, signal: null });
    await srv.restart();
    try {
      const get = await etcdctl(srv.endpoint, ['get', 'sigterm-key', '--print-value-only']);
      expect(get.stdout.trim()).toBe('kept');
    } finally {
      await srv.stop();
    }
  });

  it('SIGINT makes it exit 0', async () => {
    const cwd = makeTempDir('cairn-cli-');
    const { args, client } = await safeFlags();
    const p = new CairnCli([...args, '--data-dir', path.join(cwd, 'd')], { cwd });
    await p.waitFor(READY);
    expect((await etcdctl(client, ['put', 'k', 'v'])).code).toBe(0);
    p.signal('SIGINT');
    const e = await p.waitExit();
    expect(e.timedOut).toBe(false);
    expect(e).toMatchObject({ code: 0, signal: null });
  });

  it('peer TLS flags are checked at start: a certificate without its key, or a missing file, is refused with the reason', async () => {
    const cwd = makeTempDir('cairn-cli-');
    const { args } = await safeFlags();
    const half = await runCairn([...args, '--peer-cert-file', 'x'], { cwd });
    expect(half.timedOut).toBe(false);
    expect(half.code).not.toBe(0);
    expect(half.stderr).toContain('--peer-cert-file and --peer-key-file must be given together');
    const missing = await runCairn([...args, '--peer-cert-file', 'nope.pem', '--peer-key-file', 'nope.key'], { cwd });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('nope.pem'); // both missing: the certificate is named, every time
    fs.writeFileSync(path.join(cwd, 'only-cert.pem'), 'not read as a certificate before the key is found');
    const noKey = await runCairn([...args, '--peer-cert-file', 'only-cert.pem', '--peer-key-file', 'nope.key'], { cwd });
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toContain('nope.key');
  });

  it('--initial-cluster that does not name this member, or disagrees with its peer URLs, is refused', async () => {
    const cwd = makeTempDir('cairn-cli-');
    const u = await loopbackUrls();
    const base = ['--listen-client-urls', u.client, '--advertise-client-urls', u.client, '--listen-peer-urls', u.peer, '--initial-advertise-peer-urls', u.peer];
    const missing = await runCairn(['--name', 'a', ...base, '--initial-cluster', `x=${u.peer},b=http://127.0.0.1:1`], { cwd });
    expect(missing.timedOut).toBe(false);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain(`couldn't find local name "a" in the initial cluster configuration`);
    const mismatch = await runCairn(['--name', 'a', '--data-dir', `${cwd}/m`, ...base, '--initial-cluster', 'a=http://127.0.0.1:2,b=http://127.0.0.1:1'], { cwd });
    expect(mismatch.timedOut).toBe(false);
    expect(mismatch.code).not.toBe(0);
    expect(mismatch.stdout + mismatch.stderr).toContain('--initial-advertise-peer-urls');
  });
});
