/**
 * The client library's credentials, against a real etcd 3.4 (cairn's server has no auth
 * yet): the token goes with unary calls and with watch / keep-alive streams, an expired
 * token is replaced once transparently, wrong credentials fail with AuthFailedError, and
 * client.auth manages users, roles and permissions with typed results.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, etcdctl, startEtcd } from '../../bench/lib/procs';
import { AuthFailedError, Client, PermissionDeniedError } from '../../src/client';

afterAll(async () => {
  await cleanupAll();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('client credentials and client.auth', () => {
  it('authenticates, renews an expired token once, and manages users and roles', async () => {
    // Simple tokens that expire after 1 s of idleness.
    const etcd = await startEtcd({ extraArgs: ['--auth-token-ttl', '1'] });
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
});
