import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../../bench/lib/procs';
import { CanceledError, Client, ErrLockReleased, ErrLocked, ErrSessionExpired, newMutex, newSession, type Session } from '../../../src/client';
import { EtcdctlProc, assertNoOverlap, sleep } from './helpers';

// Mutex against real cairn and etcd, shared with `etcdctl lock`.

for (const kind of ['cairn', 'etcd'] as const) {
  describe(`Mutex on ${kind}`, () => {
    let server: ServerProc;
    const clients: Client[] = [];
    const client = (): Client => {
      const c = new Client({ endpoints: [server.endpoint] });
      clients.push(c);
      return c;
    };

    beforeAll(async () => {
      server = kind === 'cairn' ? await startCairn() : await startEtcd();
    });
    afterAll(async () => {
      for (const c of clients.splice(0)) c.close();
      await server?.stop();
    });

    it('keys are <prefix>/<lease hex> with an empty value on the session lease', async () => {
      const c = client();
      const s = await newSession(c, { ttl: 10 });
      const m = newMutex(s, 'layout');
      await m.lock();
      expect(m.key()).toBe(`layout/${s.lease.toString(16)}`);
      const g = await c.get(m.key() as string);
      expect(g.kvs).toHaveLength(1);
      expect(g.kvs[0].value.length).toBe(0);
      expect(g.kvs[0].lease).toBe(s.lease);
      expect(g.kvs[0].createRevision).toBe(m.revision);
      // Locking again from the same session reuses the key (etcd's behaviour).
      await m.lock();
      expect(m.revision).toBe(g.kvs[0].createRevision);
      await m.unlock();
      expect((await c.get({ key: 'layout/', prefix: true })).kvs).toHaveLength(0);
      await expect(m.unlock()).rejects.toBeInstanceOf(ErrLockReleased);
      await s.close();
    });

    it('3 TypeScript sessions and `etcdctl lock` exclude one another', async () => {
      const name = 'contended';
      const intervals: Array<{ who: string; start: number; end: number }> = [];
      const counterKey = 'contended-counter';
      await client().put(counterKey, '0');
      const rounds = 6;

      const tsWorker = async (i: number): Promise<void> => {
        const c = client();
        const s = await newSession(c, { ttl: 10 });
        const m = newMutex(s, name);
        for (let r = 0; r < rounds; r++) {
          await m.lock();
          const start = Date.now();
          // A non-atomic read-modify-write: lost updates would show a broken exclusion.
          const v = Number(await c.getString(counterKey));
          await sleep(20 + Math.random() * 30);
          await c.put(counterKey, String(v + 1));
          const end = Date.now();
          intervals.push({ who: `ts${i}`, start, end });
          await m.unlock();
          await sleep(Math.random() * 20);
        }
        await s.close();
      };

      const etcdctlKeys: string[] = [];
      const etcdctlWorker = async (): Promise<void> => {
        for (let r = 0; r < 3; r++) {
          const p = new EtcdctlProc(server.endpoint, ['lock', name, '--ttl', '10']);
          try {
            const [key] = await p.waitLines(1, 30_000);
            const start = Date.now();
            etcdctlKeys.push(key);
            // While etcdctl holds the lock, a TypeScript tryLock fails fast.
            const probe = await newSession(client(), { ttl: 10 });
            await expect(newMutex(probe, name).tryLock()).rejects.toBeInstanceOf(ErrLocked);
            await probe.close();
            await sleep(80);
            intervals.push({ who: `etcdctl${r}`, start, end: Date.now() });
          } finally {
            await p.interrupt(); // etcdctl unlocks on SIGINT
          }
          await sleep(Math.random() * 30);
        }
      };

      await Promise.all([tsWorker(0), tsWorker(1), tsWorker(2), etcdctlWorker()]);
      assertNoOverlap(intervals);
      // The holders really interleaved: some TypeScript hold came after an etcdctl hold.
      const firstCtlEnd = Math.min(...intervals.filter((i) => i.who.startsWith('etcdctl')).map((i) => i.end));
      expect(intervals.some((i) => i.who.startsWith('ts') && i.start >= firstCtlEnd)).toBe(true);
      expect(intervals).toHaveLength(3 * rounds + 3);
      expect(await client().getString(counterKey)).toBe(String(3 * rounds));
      for (const k of etcdctlKeys) expect(k).toMatch(new RegExp(`^${name}/[0-9a-f]+$`));
      expect((await client().get({ key: `${name}/`, prefix: true })).kvs).toHaveLength(0);
    });

    it('a TypeScript holder blocks `etcdctl lock` until it unlocks', async () => {
      const c = client();
      const s = await newSession(c, { ttl: 10 });
      const m = newMutex(s, 'ts-first');
      await m.lock();
      const p = new EtcdctlProc(server.endpoint, ['lock', 'ts-first']);
      try {
        await sleep(1_000);
        expect(p.lines).toHaveLength(0);
        await m.unlock();
        const [key] = await p.waitLines(1);
        expect(key).toMatch(/^ts-first\/[0-9a-f]+$/);
        await expect(newMutex(s, 'ts-first').tryLock()).rejects.toBeInstanceOf(ErrLocked);
      } finally {
        await p.interrupt();
      }
      await m.tryLock();
      await m.unlock();
      await s.close();
    });

    it('the lock passes on when the holder session lease is revoked (close or revoke by anyone)', async () => {
      const c1 = client();
      const c2 = client();
      const s1 = await newSession(c1, { ttl: 4 });
      const s2 = await newSession(c2, { ttl: 4 });
      const m1 = newMutex(s1, 'revoked');
      const m2 = newMutex(s2, 'revoked');
      await m1.lock();
      let acquired = false;
      const waiting = m2.lock().then(() => (acquired = true));
      await sleep(500);
      expect(acquired).toBe(false);
      // Revoke s1's lease from another client: s1 learns it lost its lease, m2 gets the lock.
      await c2.lease.revoke(s1.lease);
      await waiting;
      const end = await s1.done;
      expect(end.reason).toBe('lost');
      expect(await c2.getString(m2.key() as string)).toBe('');

      // And Session.close() releases too.
      const s3 = await newSession(client(), { ttl: 30 });
      const m3 = newMutex(s3, 'revoked');
      const third = m3.lock();
      await sleep(300);
      await s2.close();
      await third;
      expect((await s2.done).reason).toBe('closed');
      await s3.close();
    });

    it('an aborted lock() removes its waiter key; a waiter whose session is lost gets ErrSessionExpired', async () => {
      const c = client();
      const holder = await newSession(c, { ttl: 30 });
      await newMutex(holder, 'abort').lock();
      const ws = await newSession(c, { ttl: 30 });
      const ac = new AbortController();
      const p = newMutex(ws, 'abort').lock({ signal: ac.signal });
      await sleep(300);
      expect((await c.get({ key: 'abort/', prefix: true })).kvs).toHaveLength(2);
      ac.abort();
      await expect(p).rejects.toBeInstanceOf(CanceledError);
      expect((await c.get({ key: 'abort/', prefix: true })).kvs.map((kv) => kv.keyString())).toEqual([`abort/${holder.lease.toString(16)}`]);

      // The lease is revoked by another process: the session learns it at its next renewal.
      const lost: Session = await newSession(c, { ttl: 4 });
      const q = newMutex(lost, 'abort').lock();
      await sleep(300);
      await client().lease.revoke(lost.lease);
      await expect(q).rejects.toBeInstanceOf(ErrSessionExpired);
      expect((await lost.done).reason).toBe('lost');
      // Revoked through the session's own client: the keep-alive stops, the session ends too.
      const own: Session = await newSession(c, { ttl: 30 });
      const r = newMutex(own, 'abort').lock();
      await sleep(300);
      await c.lease.revoke(own.lease);
      await expect(r).rejects.toBeInstanceOf(ErrSessionExpired);
      expect((await own.done).reason).toBe('keepalive-stopped');
      await holder.close();
      await ws.close();
    });
  });
}
