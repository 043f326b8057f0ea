/**
 * Authentication and role-based access control, judged by etcd's own etcdctl (3.4):
 *
 * 1. A golden transcript: one scripted sequence (users, roles, permissions, auth enable,
 *    every allowed and denied path of KV/Txn/Watch/Lease/auth admin, root protections,
 *    password change, auth disable) run against a real etcd and against cairn, outputs
 *    compared step by step after normalising IDs.
 * 2. cairn only: what etcd leaves open and cairn does not (an unauthenticated caller
 *    reaches nothing once auth is on), simple-token expiry, JWT tokens (expiry, forged
 *    signature, stale auth revision), and the auth state surviving a restart.
 *
 *   npx vitest run test/e2e/auth.test.ts          (after `npm run build`)
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdctl, makeTempDir, startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { allDifferences, describeStep, firstDifference, renderTranscript, runSequence, type Step } from '../helpers/etcdctl-transcript';

const root = ['--user', 'root:rootpw'];
const alice = ['--user', 'alice:alicepw'];
const bob = ['--user', 'bob:bobpw'];

const STEPS: Step[] = [
  { args: ['auth', 'enable'], note: 'no root user yet' },
  { args: ['user', 'add', 'root:rootpw'] },
  { args: ['auth', 'enable'], note: 'root has no root role: etcdctl adds it, then enables' },
  { args: ['auth', 'disable'], note: 'no user: refused' },
  { args: [...root, 'auth', 'disable'] },
  { args: ['role', 'add', 'app'] },
  { args: ['role', 'add', 'app'], note: 'exists' },
  { args: ['role', 'grant-permission', 'app', 'readwrite', '/app/', '--prefix=true'] },
  { args: ['role', 'grant-permission', 'app', 'read', '/pub'] },
  { args: ['role', 'grant-permission', 'app', 'write', '/drop/', '/drop0'] },
  { args: ['role', 'grant-permission', 'nosuch', 'read', '/x'], note: 'no such role' },
  { args: ['user', 'add', 'alice:alicepw'] },
  { args: ['user', 'add', 'alice:again'], note: 'exists' },
  { args: ['user', 'add', 'bob:bobpw'] },
  { args: ['user', 'grant-role', 'alice', 'app'] },
  { args: ['user', 'grant-role', 'alice', 'nosuch'], note: 'no such role' },
  { args: ['user', 'grant-role', 'nobody', 'app'], note: 'no such user' },
  { args: ['put', '/pub', 'public'] },
  { args: ['put', '/x', 'secret'] },
  { args: ['auth', 'enable'] },
  { args: ['put', '/y', '1'], note: 'no user' },
  { args: ['get', '/x'], note: 'no user' },
  { args: ['--user', 'alice:wrong', 'get', '/pub'], note: 'wrong password' },
  { args: ['--user', 'nobody:pw', 'get', '/pub'], note: 'unknown user' },
  { args: [...alice, 'put', '/app/a', '1'] },
  { args: [...alice, 'put', '/app/b', '2', '--prev-kv'] },
  { args: [...alice, 'get', '/app/', '--prefix'] },
  { args: [...alice, 'get', '/pub'] },
  { args: [...alice, 'put', '/pub', 'no'], note: 'read-only key' },
  { args: [...alice, 'get', '/x'], note: 'no permission' },
  { args: [...alice, 'put', '/x', 'no'] },
  { args: [...alice, 'del', '/x'] },
  { args: [...alice, 'get', '/', '--prefix'], note: 'wider than granted' },
  { args: [...alice, 'get', '/app/a', '/app/c'], note: 'a range inside the grant' },
  { args: [...alice, 'put', '/drop/k', 'v'], note: 'write-only range' },
  { args: [...alice, 'get', '/drop/k'], note: 'write-only: no read' },
  { args: [...alice, 'del', '/drop/k'] },
  { args: [...alice, 'del', '/drop/k', '--prev-kv'], note: 'prev-kv needs read' },
  { args: [...alice, 'txn'], input: 'value("/app/a") = "1"\n\nput /app/c 3\n\nget /x\n\n', note: 'failure branch reads /x' },
  { args: [...alice, 'txn'], input: 'value("/x") = "secret"\n\nput /app/c 3\n\n\n', note: 'compare on /x' },
  { args: [...alice, 'txn'], input: 'value("/app/a") = "1"\n\nput /app/c 3\n\nget /app/a\n\n' },
  { args: [...alice, 'lock', '/app/l', 'echo', 'held'], note: 'a lock under a granted prefix' },
  { args: [...alice, 'lock', '/x', 'echo', 'held'], note: 'a lock outside it' },
  { args: [...bob, 'get', '/app/a'], note: 'bob has no role' },
  { args: [...bob, 'put', '/app/a', 'x'] },
  { args: [...alice, 'user', 'list'], note: 'admin only' },
  { args: [...alice, 'role', 'list'] },
  { args: [...alice, 'user', 'get', 'alice'], note: 'own user' },
  { args: [...alice, 'user', 'get', 'bob'], note: 'someone else' },
  { args: [...alice, 'role', 'get', 'app'], note: 'own role' },
  { args: [...alice, 'role', 'get', 'root'] },
  { args: [...alice, 'user', 'add', 'eve:evepw'] },
  { args: [...alice, 'role', 'grant-permission', 'app', 'readwrite', '/x'] },
  { args: [...alice, 'auth', 'disable'] },
  { args: [...root, 'user', 'list'] },
  { args: [...root, 'role', 'list'] },
  { args: [...root, 'user', 'get', 'alice'] },
  { args: [...root, 'user', 'get', 'alice', '--detail'] },
  { args: [...root, 'role', 'get', 'app'] },
  { args: [...root, 'role', 'get', 'app', '-w', 'json'] },
  { args: [...root, 'user', 'list', '-w', 'json'] },
  { args: [...root, 'get', '/x'], note: 'root reads everything' },
  { args: [...root, 'role', 'revoke-permission', 'app', '/pub'] },
  { args: [...root, 'role', 'revoke-permission', 'app', '/pub'], note: 'not granted' },
  { args: [...alice, 'get', '/pub'], note: 'revoked' },
  { args: [...root, 'user', 'revoke-role', 'alice', 'root'], note: 'not granted' },
  { args: [...root, 'user', 'delete', 'root'], note: 'root stays while auth is on' },
  { args: [...root, 'role', 'delete', 'root'] },
  { args: [...root, 'user', 'revoke-role', 'root', 'root'] },
  { args: [...root, 'user', 'passwd', 'alice', '--interactive=false'], input: 'newpw\n' },
  { args: [...alice, 'get', '/app/a'], note: 'old password' },
  { args: ['--user', 'alice:newpw', 'get', '/app/a'] },
  { args: [...root, 'user', 'delete', 'bob'] },
  { args: [...bob, 'get', '/app/a'], note: 'deleted user' },
  { args: [...root, 'role', 'delete', 'app'] },
  { args: ['--user', 'alice:newpw', 'get', '/app/a'], note: 'role gone' },
  { args: [...root, 'user', 'get', 'alice'] },
  { args: [...root, 'auth', 'disable'] },
  { args: ['put', '/y', 'open again'] },
  { args: ['get', '/x'] },
];

const outDir = os.tmpdir();

describe('auth: etcdctl against etcd and cairn', () => {
  let etcd: ServerProc;
  let cairn: ServerProc;

  beforeAll(async () => {
    [etcd, cairn] = await Promise.all([startEtcd(), startCairn({ extraArgs: ['--bcrypt-cost', '4'] })]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([etcd?.stop(), cairn?.stop()]);
  });

  it('the same script prints the same on both servers', async () => {
    const expected = await runSequence(etcd.endpoint, STEPS);
    const actual = await runSequence(cairn.endpoint, STEPS);
    fs.writeFileSync(path.join(outDir, 'cairn-e2e-auth.etcd.txt'), renderTranscript(expected));
    fs.writeFileSync(path.join(outDir, 'cairn-e2e-auth.cairn.txt'), renderTranscript(actual));
    // The script must exercise both outcomes, or it proves little.
    expect(expected.filter((r) => r.code === 0).length).toBeGreaterThan(30);
    expect(expected.filter((r) => r.stderr.includes('permission denied')).length).toBeGreaterThan(10);
    const diff = firstDifference(expected, actual);
    if (diff !== null) {
      const others = allDifferences(expected, actual).map((i) => `  step ${i}: ${describeStep(STEPS[i])}`);
      throw new Error(`${diff.message}\n\n${others.length} differing step(s):\n${others.join('\n')}\n\ncairn output tail:\n${cairn.output().slice(-2000)}`);
    }
  }, 240_000);
});

// ---------------------------------------------------------------------------------------
// cairn only: raw gRPC for what etcdctl cannot show (tokens by hand, expiry, forgery).

const protoRoot = path.join(__dirname, '..', '..', 'proto');

function authClients(endpoint: string): { auth: grpc.Client; kv: grpc.Client; maint: grpc.Client; close: () => void } {
  const target = endpoint.replace(/^https?:\/\//, '');
  const creds = grpc.credentials.createInsecure();
  const auth = new grpc.Client(target, creds);
  const kv = new grpc.Client(target, creds);
  const maint = new grpc.Client(target, creds);
  return { auth, kv, maint, close: () => [auth, kv, maint].forEach((c) => c.close()) };
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { etcdserverpb } = require('../../dist/src/gen/proto') as typeof import('../../src/gen/proto');

function call<Req, Res>(client: grpc.Client, method: string, type: { encode(m: Req): { finish(): Uint8Array }; decode(b: Uint8Array): Res }, resType: { decode(b: Uint8Array): Res }, req: Req, token?: string): Promise<Res> {
  const md = new grpc.Metadata();
  if (token !== undefined) md.set('token', token);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method,
      (m: Req) => Buffer.from(type.encode(m).finish()),
      (b: Buffer) => resType.decode(b),
      req,
      md,
      { deadline: Date.now() + 10_000 },
      (err, res) => (err ? reject(err) : resolve(res as Res)),
    );
  });
}

const pb = etcdserverpb;
const authenticate = (c: grpc.Client, name: string, password: string) =>
  call(c, '/etcdserverpb.Auth/Authenticate', pb.AuthenticateRequest, pb.AuthenticateResponse, { name, password });
const put = (c: grpc.Client, key: string, value: string, token?: string) =>
  call(c, '/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse, { key: Buffer.from(key), value: Buffer.from(value) }, token);
const get = (c: grpc.Client, key: string, token?: string) => call(c, '/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse, { key: Buffer.from(key) }, token);

async function setUpUsers(endpoint: string): Promise<void> {
  const script: string[][] = [
    ['user', 'add', 'root:rootpw'],
    ['role', 'add', 'root'],
    ['user', 'grant-role', 'root', 'root'],
    ['role', 'add', 'app'],
    ['role', 'grant-permission', 'app', 'readwrite', '/app/', '--prefix=true'],
    ['user', 'add', 'alice:alicepw'],
    ['user', 'grant-role', 'alice', 'app'],
    ['auth', 'enable'],
  ];
  for (const args of script) {
    const r = await etcdctl(endpoint, args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  }
}

const errorOf = async (p: Promise<unknown>): Promise<{ code?: number; details?: string }> => {
  try {
    await p;
  } catch (e) {
    return e as { code?: number; details?: string };
  }
  throw new Error('expected the call to fail');
};

describe('auth on cairn: what etcdctl cannot show', () => {
  it('with auth on, a caller without credentials reaches no RPC; simple tokens expire after --auth-token-ttl without use', async () => {
    // Margins for a loaded machine: used after 1 s of a 4 s TTL, then idle for 6 s.
    const server = await startCairn({ extraArgs: ['--bcrypt-cost', '4', '--auth-token-ttl', '4'] });
    const c = authClients(server.endpoint);
    try {
      await setUpUsers(server.endpoint);
      for (const args of [['member', 'list'], ['endpoint', 'status'], ['lease', 'grant', '10'], ['compaction', '1'], ['alarm', 'list'], ['snapshot', 'save', path.join(makeTempDir('auth-snap'), 's.db')]]) {
        const r = await etcdctl(server.endpoint, args);
        expect(r.code, args.join(' ')).not.toBe(0);
        expect(r.stderr, args.join(' ')).toMatch(/user name is empty|permission denied/);
      }
      // A non-root user gets the user-level calls but not the admin ones.
      expect((await etcdctl(server.endpoint, [...alice, 'member', 'list'])).code).toBe(0);
      expect((await etcdctl(server.endpoint, [...alice, 'lease', 'grant', '10'])).code).toBe(0);
      const snap = await etcdctl(server.endpoint, [...alice, 'snapshot', 'save', path.join(makeTempDir('auth-snap'), 's.db')]);
      expect(snap.stderr).toContain('permission denied');
      expect((await etcdctl(server.endpoint, [...root, 'defrag'])).code).toBe(0);
      expect((await etcdctl(server.endpoint, [...alice, 'defrag'])).stderr).toContain('permission denied');

      const { token } = await authenticate(c.auth, 'alice', 'alicepw');
      expect(token).toMatch(/^[a-zA-Z]{16}\.\d+$/);
      await put(c.kv, '/app/t', 'v', token);
      await new Promise((r) => setTimeout(r, 1000));
      await get(c.kv, '/app/t', token); // used within the TTL: kept alive
      await new Promise((r) => setTimeout(r, 6000));
      const expired = await errorOf(get(c.kv, '/app/t', token));
      expect(expired.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(expired.details).toBe('etcdserver: invalid auth token');
      const forged = await errorOf(get(c.kv, '/app/t', 'abcdefghijklmnop.1'));
      expect(forged.details).toBe('etcdserver: invalid auth token');
    } finally {
      c.close();
      await server.stop();
    }
  }, 120_000);

  it('JWT tokens: signed and checked with the configured keys (public key as a certificate too), expire, go stale when roles change', async () => {
    const dir = makeTempDir('auth-jwt');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(path.join(dir, 'priv.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    // The public key given as a certificate over it, as operators often have it.
    execFileSync('openssl', ['req', '-x509', '-key', 'priv.pem', '-out', 'pub-cert.pem', '-days', '2', '-subj', '/CN=cairn-jwt'], { cwd: dir, stdio: 'ignore' });
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const spec = `jwt,pub-key=${path.join(dir, 'pub-cert.pem')},priv-key=${path.join(dir, 'priv.pem')},sign-method=RS256,ttl=8s`;
    const server = await startCairn({ extraArgs: ['--bcrypt-cost', '4', '--auth-token', spec] });
    const c = authClients(server.endpoint);
    try {
      await setUpUsers(server.endpoint);
      const { token } = await authenticate(c.auth, 'alice', 'alicepw');
      const [, payload] = token.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { username: string; revision: number; exp: number };
      expect(claims.username).toBe('alice');
      expect(claims.revision).toBeGreaterThan(0);
      await put(c.kv, '/app/j', 'v', token);

      // Same claims signed with another key: refused.
      const jwt = (await import('jsonwebtoken')).default;
      const forged = jwt.sign({ username: 'root', revision: claims.revision }, other.privateKey, { algorithm: 'RS256', expiresIn: 60 });
      expect((await errorOf(get(c.kv, '/app/j', forged))).details).toBe('etcdserver: invalid auth token');

      // A role change makes every token issued before it stale (clients authenticate again).
      expect((await etcdctl(server.endpoint, [...root, 'role', 'add', 'other'])).code).toBe(0);
      const stale = await errorOf(get(c.kv, '/app/j', token));
      expect(stale.details).toBe('auth: revision in header is old');
      const fresh = (await authenticate(c.auth, 'alice', 'alicepw')).token;
      expect((await get(c.kv, '/app/j', fresh)).kvs).toHaveLength(1);
      await new Promise((r) => setTimeout(r, 9000));
      expect((await errorOf(get(c.kv, '/app/j', fresh))).details).toBe('etcdserver: invalid auth token');
    } finally {
      c.close();
      await server.stop();
    }
  }, 120_000);

  it('a watch stream checks each new watch with the permissions of that moment (an auth change does not break a live stream)', async () => {
    const server = await startCairn({ extraArgs: ['--bcrypt-cost', '4'] });
    const c = authClients(server.endpoint);
    try {
      await setUpUsers(server.endpoint);
      const { token } = await authenticate(c.auth, 'alice', 'alicepw');
      const md = new grpc.Metadata();
      md.set('token', token);
      const stream = c.kv.makeBidiStreamRequest(
        '/etcdserverpb.Watch/Watch',
        (m: import('../../src/gen/proto').etcdserverpb.IWatchRequest) => Buffer.from(pb.WatchRequest.encode(m).finish()),
        (b: Buffer) => pb.WatchResponse.decode(b),
        md,
      );
      const responses: Array<import('../../src/gen/proto').etcdserverpb.WatchResponse> = [];
      stream.on('data', (r: import('../../src/gen/proto').etcdserverpb.WatchResponse) => responses.push(r));
      stream.on('error', () => undefined);
      const next = async (n: number): Promise<import('../../src/gen/proto').etcdserverpb.WatchResponse> => {
        const deadline = Date.now() + 5000;
        while (responses.length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(responses.length).toBeGreaterThanOrEqual(n);
        return responses[n - 1];
      };
      stream.write({ createRequest: { key: Buffer.from('/app/'), rangeEnd: Buffer.from('/app0') } });
      expect((await next(1)).canceled).toBe(false);
      stream.write({ createRequest: { key: Buffer.from('/other') } });
      const denied = await next(2);
      expect(denied.canceled).toBe(true);
      expect(denied.cancelReason).toBe('rpc error: code = PermissionDenied desc = etcdserver: permission denied');
      // Users and roles change: the stream's next watch is checked against the new state.
      expect((await etcdctl(server.endpoint, [...root, 'role', 'grant-permission', 'app', 'read', '/other'])).code).toBe(0);
      stream.write({ createRequest: { key: Buffer.from('/other') } });
      const allowed = await next(3);
      expect(allowed.created).toBe(true);
      expect(allowed.canceled).toBe(false);
      await put(c.kv, '/app/w', 'x', token);
      const event = await next(4);
      expect(event.events[0]?.kv?.key?.toString()).toBe('/app/w');
      stream.end();
    } finally {
      c.close();
      await server.stop();
    }
  }, 60_000);

  it('revoking a lease needs write access to every key attached to it; passwords never reach the logs', async () => {
    const server = await startCairn({ extraArgs: ['--bcrypt-cost', '4', '--log-level', 'debug'] });
    try {
      await setUpUsers(server.endpoint);
      const grant = await etcdctl(server.endpoint, [...alice, 'lease', 'grant', '600']);
      expect(grant.code, grant.stderr).toBe(0);
      const lease = /lease ([0-9a-f]+) granted/.exec(grant.stdout)![1];
      // alice's lease, attached by root to a key outside alice's roles.
      expect((await etcdctl(server.endpoint, [...root, 'put', '/outside', 'v', '--lease', lease])).code).toBe(0);
      const revoke = await etcdctl(server.endpoint, [...alice, 'lease', 'revoke', lease]);
      expect(revoke.code).not.toBe(0);
      expect(revoke.stderr).toContain('etcdserver: permission denied');
      // Attaching it to a key of her own is refused too: she could not revoke it afterwards.
      const attach = await etcdctl(server.endpoint, [...alice, 'put', '/app/mine', 'v', '--lease', lease]);
      expect(attach.stderr).toContain('etcdserver: permission denied');
      expect((await etcdctl(server.endpoint, [...root, 'lease', 'revoke', lease])).code).toBe(0);
      expect((await etcdctl(server.endpoint, [...root, 'get', '/outside'])).stdout).toBe('');
      // Every password used above (set, changed, tried) is absent from the member's output.
      expect((await etcdctl(server.endpoint, [...root, 'user', 'passwd', 'alice', '--interactive=false'], { input: 'Sup3r-secret-pw\n' })).code).toBe(0);
      expect((await etcdctl(server.endpoint, ['--user', 'alice:Sup3r-secret-pw', 'get', '/app/x'])).code).toBe(0);
      const logs = server.output();
      expect(logs).toContain('ready to serve client requests'); // the output is captured
      for (const pw of ['rootpw', 'alicepw', 'Sup3r-secret-pw']) expect(logs).not.toContain(pw);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('users, roles and the auth switch survive a restart; tokens do not', async () => {
    const server = await startCairn({ extraArgs: ['--bcrypt-cost', '4'] });
    const c = authClients(server.endpoint);
    try {
      await setUpUsers(server.endpoint);
      const { token } = await authenticate(c.auth, 'alice', 'alicepw');
      await put(c.kv, '/app/r', 'v', token);
      await server.kill9();
      await server.restart();
      c.close();
      const c2 = authClients(server.endpoint);
      try {
        expect((await errorOf(get(c2.kv, '/app/r', token))).details).toBe('etcdserver: invalid auth token');
        expect((await errorOf(get(c2.kv, '/app/r'))).details).toBe('etcdserver: user name is empty');
        const again = (await authenticate(c2.auth, 'alice', 'alicepw')).token;
        expect((await get(c2.kv, '/app/r', again)).kvs?.[0]?.value?.toString()).toBe('v');
        const r = await etcdctl(server.endpoint, [...root, 'role', 'get', 'app']);
        expect(r.stdout).toContain('[/app/, /app0) (prefix /app/)');
      } finally {
        c2.close();
      }
    } finally {
      await server.stop();
    }
  }, 120_000);
});
