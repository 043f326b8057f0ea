/**
 * A 3-member cairn cluster with TLS everywhere and auth on, driven by etcd's etcdctl and by
 * cairnctl as an operator would: https client URLs with --client-cert-auth, https peer URLs with
 * --peer-client-cert-auth, all certificates from one test CA (made with openssl per run).
 *
 * - allowed paths work through every member (tokens are known cluster-wide), denied paths
 *   get etcd's errors, a client certificate's common name is the user when no token is sent;
 * - a plain-text client cannot talk to a TLS port, a client without a certificate is refused;
 * - a member whose certificate is not from the cluster's CA cannot join, nor one whose
 *   common name is not the allowed one (--peer-cert-allowed-cn), nor a revoked one
 *   (--peer-crl-file);
 * - --peer-auto-tls: self-signed peer certificates, the cluster forms and replicates.
 *
 *   npx vitest run test/e2e/security-cluster.test.ts     (after `npm run build`)
 */
import { ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdctl, freePort, makeTempDir, repoRoot } from '../../bench/lib/procs';
import { runTool } from '../cli/golden-lib';
import { TestCa } from '../helpers/test-ca';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { etcdserverpb: pb } = require('../../dist/src/gen/proto') as typeof import('../../src/gen/proto');

let dir: string;
const children: ChildProcess[] = [];
const f = (name: string): string => join(dir, name);

beforeAll(() => {
  dir = makeTempDir('cairn-sec-');
  const certs = new TestCa(dir);
  certs.ca('ca');
  certs.ca('rogue-ca');
  const local = { san: 'IP:127.0.0.1,DNS:localhost' };
  certs.issue('server', 'cairn', local);
  certs.issue('peer', 'cairn-peer', local);
  certs.issue('peer-other-cn', 'intruder', local);
  certs.issue('rogue-peer', 'cairn-peer', { ...local, ca: 'rogue-ca' });
  certs.issue('client-root', 'root', local);
  certs.issue('client-alice', 'alice', local);
  certs.issue('peer-revoked', 'cairn-peer', local);
  certs.revoke('peer-revoked');
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

interface Member {
  name: string;
  client: string;
  peer: string;
  output: () => string;
  child: ChildProcess;
}

async function spawnMember(name: string, clientPort: number, peerPort: number, flags: string[], waitFor = 'ready to serve client requests'): Promise<Member> {
  const client = `https://127.0.0.1:${clientPort}`;
  const peer = `https://127.0.0.1:${peerPort}`;
  const child = spawn(process.execPath, [
    join(repoRoot(), 'dist', 'src', 'bin', 'cairn.js'),
    '--name', name,
    '--data-dir', makeTempDir(`cairn-sec-${name}-`),
    '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
    '--heartbeat-interval', '50', '--election-timeout', '500',
    ...flags,
  ]);
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 20_000;
  while (!out.includes(waitFor)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${name} did not start: ${out.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { name, client, peer, output: () => out, child };
}

const serverFlags = (): string[] => [
  '--cert-file', f('server.pem'), '--key-file', f('server.key'), '--trusted-ca-file', f('ca.pem'), '--client-cert-auth',
  '--peer-cert-file', f('peer.pem'), '--peer-key-file', f('peer.key'), '--peer-trusted-ca-file', f('ca.pem'), '--peer-client-cert-auth',
  '--peer-cert-allowed-cn', 'cairn-peer', '--peer-crl-file', f('crl.pem'), '--bcrypt-cost', '4', '--auth-token-ttl', '6',
];

async function startCluster(n: number, flags: () => string[], scheme = 'https'): Promise<Member[]> {
  const ports = await Promise.all(Array.from({ length: 2 * n }, () => freePort()));
  const names = ['a', 'b', 'c', 'd', 'e'].slice(0, n);
  const initial = names.map((nm, i) => `${nm}=${scheme}://127.0.0.1:${ports[2 * i + 1]}`).join(',');
  return Promise.all(names.map((nm, i) => spawnMember(nm, ports[2 * i], ports[2 * i + 1], [...flags(), '--initial-cluster', initial, '--initial-cluster-token', 'sec', '--initial-cluster-state', 'new'])));
}

const tlsAs = (who: 'root' | 'alice' | 'none'): string[] => [
  '--cacert', f('ca.pem'),
  ...(who === 'none' ? [] : ['--cert', f(`client-${who}.pem`), '--key', f(`client-${who}.key`)]),
];
/** A client certificate is required on these ports: token users still present one (CN alice, a user without roles). */
const asUser = (user: string): string[] => [...tlsAs('alice'), '--user', user];

type Tool = 'etcdctl' | 'cairnctl';

async function ctl(endpoint: string, args: string[], expectFailure = false, tool: Tool = 'etcdctl'): Promise<{ code: number; stdout: string; stderr: string }> {
  const timeouts = expectFailure ? ['--dial-timeout', '1s', '--command-timeout', '2s'] : ['--dial-timeout', '3s', '--command-timeout', '10s'];
  return tool === 'etcdctl' ? etcdctl(endpoint, [...timeouts, ...args], { timeoutMs: 30_000 }) : runTool('cairnctl', ['--endpoints', endpoint, ...timeouts, ...args]);
}

async function ok(endpoint: string, args: string[], tool: Tool = 'etcdctl'): Promise<string> {
  const r = await ctl(endpoint, args, false, tool);
  expect(r.code, `${tool} ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

async function denied(endpoint: string, args: string[], message: string, tool: Tool = 'etcdctl'): Promise<void> {
  const r = await ctl(endpoint, args, false, tool);
  expect(r.code, `${tool} ${args.join(' ')} should fail`).not.toBe(0);
  expect(r.stderr).toContain(message);
}

async function waitLeader(m: Member, as: string[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await ctl(m.client, [...as, 'endpoint', 'status', '-w', 'json']);
    if (r.code === 0 && /"leader":[1-9]/.test(r.stdout)) return;
    if (Date.now() > deadline) throw new Error(`no leader seen from ${m.name}: ${r.stdout}${r.stderr}\n${m.output().slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

describe('a 3-member cluster with client and peer TLS and auth on', () => {
  let members: Member[];

  beforeAll(async () => {
    members = await startCluster(3, serverFlags);
    await waitLeader(members[0], tlsAs('root'));
    const e = members[0].client;
    const root = tlsAs('root');
    for (const args of [
      ['user', 'add', 'root:rootpw'],
      ['user', 'grant-role', 'root', 'root'],
      ['role', 'add', 'app'],
      ['role', 'grant-permission', 'app', 'readwrite', '/app/', '--prefix=true'],
      ['user', 'add', 'bob:bobpw'],
      ['user', 'grant-role', 'bob', 'app'],
      ['user', 'add', 'alice', '--no-password'],
      ['put', '/secret', 's'],
    ]) {
      await ok(e, [...root, ...args]);
    }
    await ok(e, [...root, 'role', 'add', 'root']).catch(() => undefined);
    await ok(e, [...root, 'auth', 'enable']);
  }, 120_000);

  it.each(['etcdctl', 'cairnctl'] as const)('%s: allowed paths work on every member: by password (token) and by certificate common name', async (tool) => {
    await ok(members[0].client, [...asUser('bob:bobpw'), 'put', '/app/k', 'v1'], tool);
    for (const m of members) {
      expect(await ok(m.client, [...asUser('bob:bobpw'), 'get', '/app/k', '--print-value-only'], tool)).toBe('v1\n');
      // CN=root, no token: the certificate's user.
      expect(await ok(m.client, [...tlsAs('root'), 'get', '/secret', '--print-value-only'], tool)).toBe('s\n');
    }
    expect(await ok(members[1].client, [...tlsAs('root'), 'user', 'get', 'bob'], tool)).toBe('User: bob\nRoles: app\n');
    expect(await ok(members[1].client, [...tlsAs('root'), 'user', 'list'])).toBe('alice\nbob\nroot\n');
    // Members publish their client URLs shortly after they start: wait for all three.
    const deadline = Date.now() + 10_000;
    let list = '';
    while (Date.now() < deadline) {
      list = await ok(members[2].client, [...tlsAs('root'), 'member', 'list']);
      if ((list.match(/, started, [abc], https:\/\/127\.0\.0\.1:\d+, https:\/\/127\.0\.0\.1:\d+/g) ?? []).length === 3) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(list.match(/, started, [abc], https:\/\/127\.0\.0\.1:\d+, https:\/\/127\.0\.0\.1:\d+/g) ?? []).toHaveLength(3);
    await ok(members[2].client, [...tlsAs('root'), 'endpoint', 'health', '--cluster']);
  }, 60_000);

  it.each(['etcdctl', 'cairnctl'] as const)('%s: denied paths are denied with etcd\'s errors on every member', async (tool) => {
    for (const m of members) {
      await denied(m.client, [...asUser('bob:bobpw'), 'get', '/secret'], 'etcdserver: permission denied', tool);
      await denied(m.client, [...asUser('bob:bobpw'), 'put', '/secret', 'x'], 'etcdserver: permission denied', tool);
      await denied(m.client, [...asUser('bob:bobpw'), 'user', 'list'], 'etcdserver: permission denied', tool);
      await denied(m.client, [...asUser('bob:wrong'), 'get', '/app/k'], 'etcdserver: authentication failed, invalid user ID or password', tool);
      // CN=alice: a user with no roles.
      await denied(m.client, [...tlsAs('alice'), 'get', '/app/k'], 'etcdserver: permission denied', tool);
      await denied(m.client, [...tlsAs('alice'), 'member', 'add', 'x', '--peer-urls', 'https://127.0.0.1:1'], 'etcdserver: permission denied', tool);
      // A user without a password cannot authenticate with one.
      await denied(m.client, [...asUser('alice:anything'), 'get', '/app/k'], 'etcdserver: authentication failed, invalid user ID or password', tool);
    }
    const w = await ctl(members[1].client, [...asUser('bob:bobpw'), 'watch', '/secret'], false, tool);
    expect(w.stdout + w.stderr).toContain('permission denied');
  }, 90_000);

  it('a token is known on every member and refused everywhere once it expired (--auth-token-ttl 6)', async () => {
    const creds = grpc.credentials.createSsl(readFileSync(f('ca.pem')), readFileSync(f('client-alice.key')), readFileSync(f('client-alice.pem')));
    const clients = members.map((m) => new grpc.Client(m.client.replace('https://', ''), creds));
    const unary = <T>(c: grpc.Client, method: string, req: Uint8Array, decode: (b: Buffer) => T, token?: string): Promise<T> =>
      new Promise((resolve, reject) => {
        const md = new grpc.Metadata();
        if (token) md.set('token', token);
        c.makeUnaryRequest(method, (b: Uint8Array) => Buffer.from(b), decode, req, md, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(res as T)));
      });
    try {
      const auth = await unary(clients[0], '/etcdserverpb.Auth/Authenticate', pb.AuthenticateRequest.encode({ name: 'bob', password: 'bobpw' }).finish(), (b) => pb.AuthenticateResponse.decode(b));
      const range = pb.RangeRequest.encode({ key: Buffer.from('/app/k') }).finish();
      for (const c of clients) {
        const r = await unary(c, '/etcdserverpb.KV/Range', range, (b) => pb.RangeResponse.decode(b), auth.token);
        expect(r.kvs).toHaveLength(1);
      }
      await new Promise((r) => setTimeout(r, 8000));
      for (const c of clients) {
        const err = await unary(c, '/etcdserverpb.KV/Range', range, (b) => pb.RangeResponse.decode(b), auth.token).then(
          () => undefined,
          (e: grpc.ServiceError) => e,
        );
        expect(err?.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(err?.details).toBe('etcdserver: invalid auth token');
      }
    } finally {
      for (const c of clients) c.close();
    }
  }, 60_000);

  it('a plain-text client cannot talk to the TLS port; a client without a certificate is refused', async () => {
    const port = members[0].client.split(':').pop()!;
    const plain = await ctl(`http://127.0.0.1:${port}`, ['get', '/app/k'], true);
    expect((await ctl(`http://127.0.0.1:${port}`, ['get', '/app/k'], true, 'cairnctl')).code).not.toBe(0);
    expect(plain.code).not.toBe(0);
    const noCert = await ctl(members[0].client, [...tlsAs('none'), '--user', 'bob:bobpw', 'get', '/app/k'], true);
    expect(noCert.code).not.toBe(0);
    const wrongCa = await ctl(members[0].client, ['--cacert', f('rogue-ca.pem'), '--cert', f('client-root.pem'), '--key', f('client-root.key'), 'get', '/app/k'], true);
    expect(wrongCa.code).not.toBe(0);
  }, 60_000);

  it('a member with a certificate from another CA, with another common name, or revoked, cannot join', async () => {
    for (const [certName, note] of [['rogue-peer', 'rogue CA'], ['peer-other-cn', 'wrong CN'], ['peer-revoked', 'revoked (--peer-crl-file)']] as const) {
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      const peerUrl = `https://127.0.0.1:${peerPort}`;
      const add = await ok(members[0].client, [...tlsAs('root'), 'member', 'add', 'x', '--peer-urls', peerUrl]);
      const initial = add.split('\n').find((l) => l.startsWith('ETCD_INITIAL_CLUSTER='))!.replace(/^ETCD_INITIAL_CLUSTER="(.*)"$/, '$1');
      const joiner = await spawnMember(
        'x',
        clientPort,
        peerPort,
        [
          '--cert-file', f('server.pem'), '--key-file', f('server.key'),
          '--peer-cert-file', f(`${certName}.pem`), '--peer-key-file', f(`${certName}.key`),
          '--peer-trusted-ca-file', f(certName === 'rogue-peer' ? 'rogue-ca.pem' : 'ca.pem'), '--peer-client-cert-auth',
          '--initial-cluster', initial, '--initial-cluster-state', 'existing',
        ],
        'listening for peers',
      );
      await new Promise((r) => setTimeout(r, 4000));
      // It never learned the cluster: still waiting to be dialed, no member start.
      expect(joiner.output(), note).not.toContain('member started');
      const refusedSomewhere = [joiner, ...members].some((m) => /refused a peer connection|certificate|self.signed|unable to verify/i.test(m.output()));
      expect(refusedSomewhere, note).toBe(true);
      const list = await ok(members[1].client, [...tlsAs('root'), 'member', 'list']);
      expect(list, note).toMatch(/unstarted/);
      const id = list.split('\n').find((l) => l.includes(peerUrl))!.split(',')[0];
      joiner.child.kill('SIGKILL');
      await ok(members[0].client, [...tlsAs('root'), 'member', 'remove', id]);
    }
  }, 90_000);
});

describe('--peer-auto-tls', () => {
  it('members with self-signed peer certificates form a cluster and replicate', async () => {
    const members = await startCluster(3, () => ['--peer-auto-tls', '--auto-tls']);
    // etcdctl 3.4 applies --insecure-skip-tls-verify only with --insecure-transport=false.
    const as = ['--insecure-transport=false', '--insecure-skip-tls-verify'];
    await waitLeader(members[0], as);
    await ok(members[0].client, [...as, 'put', 'k', 'auto']);
    for (const m of members) {
      expect(m.output()).toContain('generated a self-signed peer certificate');
      expect(await ok(m.client, [...as, 'get', 'k', '--print-value-only'])).toBe('auto\n');
    }
  }, 90_000);
});
