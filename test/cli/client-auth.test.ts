/**
 * The client library's credentials, against a real etcd 3.4 and against cairn: the token
 * goes with unary calls and with watch / keep-alive streams, an expired token is replaced
 * once transparently, wrong credentials fail with AuthFailedError, and client.auth manages
 * users, roles and permissions with typed results. On cairn with JWT tokens, a token made
 * stale by a role change is replaced the same way.
 */
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, etcdctl, makeTempDir, startCairn, startEtcd } from '../../bench/lib/procs';
import { AuthFailedError, Client, PermissionDeniedError } from '../../src/client';

afterAll(async () => {
  await cleanupAll();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('client credentials and client.auth', () => {
  it.each([
    ['etcd', () => startEtcd({ extraArgs: ['--auth-token-ttl', '1'] })],
    ['cairn', () => startCairn({ extraArgs: ['--auth-token-ttl', '1', '--bcrypt-cost', '4'] })],
  ] as const)('%s: authenticates, renews an expired token once, and manages users and roles', async (_name, start) => {
    // Simple tokens that expire after 1 s of idleness.
    const etcd = await start();
    const admin = new Client({ endpoints: [etcd.endpoint] });
    try {
      await admin.auth.userAdd('root', 'rootpw');
      await admin.auth.roleAdd('root');
      await admin.auth.userGrantRole('root', 'root');
      await admin.auth.userAdd('reader', 'readpw');
      await admin.auth.roleAdd('ro');
      await admin.auth.roleGrantPermission('ro', 'read', 'app/', 'app0');
      await admin.auth.userGrantRole('reader', 'ro');
      expect((await admin.auth.userList()).users).toEqual(['reader', 'root']);
      expect((await admin.auth.userGet('reader')).roles).toEqual(['ro']);
      const perms = (await admin.auth.roleGet('ro')).permissions;
      expect(perms.map((p) => [p.type, p.key.toString(), p.rangeEnd.toString()])).toEqual([['read', 'app/', 'app0']]);
      await admin.auth.authEnable();
    } finally {
      admin.close();
    }

    const root = new Client({ endpoints: [etcd.endpoint], credentials: { username: 'root', password: 'rootpw' } });
    const reader = new Client({ endpoints: [etcd.endpoint], credentials: { username: 'reader', password: 'readpw' } });
    const wrong = new Client({ endpoints: [etcd.endpoint], credentials: { username: 'root', password: 'nope' }, requestTimeoutMs: 3000 });
    try {
      await root.put('app/x', '1');
      expect(await reader.getString('app/x')).toBe('1');
      await expect(reader.put('app/x', '2')).rejects.toBeInstanceOf(PermissionDeniedError);
      await expect(wrong.get('app/x')).rejects.toBeInstanceOf(AuthFailedError);

      // A watch carries the token too.
      const w = root.watch({ key: 'app/', prefix: true });
      await w.ready;
      await root.put('app/y', '2');
      const it = w[Symbol.asyncIterator]();
      const batch = await it.next();
      expect(batch.value?.events[0].kv.keyString()).toBe('app/y');
      await w.cancel();

      // The tokens expire; the next call authenticates again by itself.
      await sleep(2500);
      expect(await reader.getString('app/x')).toBe('1');
      await root.put('app/z', '3');
      expect((await etcdctl(etcd.endpoint, ['--user', 'root:rootpw', 'get', 'app/z', '--print-value-only'])).stdout).toBe('3\n');

      await root.auth.userChangePassword('reader', 'newpw');
      await root.auth.userRevokeRole('reader', 'ro');
      await root.auth.roleRevokePermission('ro', 'app/', 'app0');
      expect((await root.auth.roleGet('ro')).permissions).toEqual([]);
      await root.auth.roleDelete('ro');
      await root.auth.userDelete('reader');
      expect((await root.auth.roleList()).roles).toEqual(['root']);
      await root.auth.authDisable();
    } finally {
      root.close();
      reader.close();
      wrong.close();
    }
  }, 60_000);

  it('cairn with JWT tokens: a token made stale by a role change is replaced transparently', async () => {
    const dir = makeTempDir('client-jwt-');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    writeFileSync(join(dir, 'priv.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    const server = await startCairn({ extraArgs: ['--bcrypt-cost', '4', '--auth-token', `jwt,pub-key=${join(dir, 'pub.pem')},priv-key=${join(dir, 'priv.pem')},sign-method=ES256,ttl=5m`] });
    const admin = new Client({ endpoints: [server.endpoint] });
    await admin.auth.userAdd('root', 'rootpw');
    await admin.auth.userGrantRole('root', 'root');
    await admin.auth.authEnable();
    admin.close();
    const root = new Client({ endpoints: [server.endpoint], credentials: { username: 'root', password: 'rootpw' } });
    try {
      await root.put('k', '1');
      await root.auth.roleAdd('other'); // the auth revision moves: root's token is now stale
      await root.put('k', '2'); // refused as stale, re-authenticated, sent again
      expect(await root.getString('k')).toBe('2');
      expect((await etcdctl(server.endpoint, ['--user', 'root:rootpw', 'get', 'k', '--print-value-only'])).stdout).toBe('2\n');
    } finally {
      root.close();
      await server.stop();
    }
  }, 60_000);
});
