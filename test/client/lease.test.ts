import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { Client, LeaseNotFoundError, type EtcdError } from '../../src/client';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.each(['cairn', 'etcd'] as const)('lease against %s', (kind) => {
  let srv: ServerProc;
  let c: Client;
  beforeAll(async () => {
    srv = kind === 'cairn' ? await startCairn() : await startEtcd();
    c = new Client({ endpoints: [srv.endpoint] });
  });
  afterAll(async () => {
    c?.close();
    await srv?.stop();
  });

  it('grant, attach a key, timeToLive with keys, leases, revoke deletes the key', async () => {
    const g = await c.lease.grant(30);
    expect(g.ttl).toBe(30);
    expect(typeof g.id).toBe('bigint');
    await c.put('lk', 'v', { lease: g.id });
    expect((await c.get('lk')).kvs[0].lease).toBe(g.id);
    const t = await c.lease.timeToLive(g.id, { keys: true });
    expect(t.grantedTtl).toBe(30);
    expect(t.ttl).toBeGreaterThan(25);
    expect(t.keys.map((k) => k.toString())).toEqual(['lk']);
    expect((await c.lease.leases()).leases).toContain(g.id);
    await c.lease.revoke(g.id);
    expect((await c.get('lk')).kvs).toEqual([]);
    expect((await c.lease.timeToLive(g.id)).ttl).toBe(-1);
    await expect(c.lease.revoke(g.id)).rejects.toBeInstanceOf(LeaseNotFoundError);
  });

  it('a chosen lease ID beyond 2^53 keeps its full precision', async () => {
    const id = 0x7abc_def0_1234_5678n;
    const g = await c.lease.grant(30, { id });
    expect(g.id).toBe(id);
    await c.put('big', 'v', { lease: id });
    expect((await c.get('big')).kvs[0].lease).toBe(id);
    await c.lease.revoke(id);
  });

  it('keep-alive keeps a key alive past its TTL and stops on revoke', async () => {
    const g = await c.lease.grant(2, { keepAlive: true });
    const renewals: number[] = [];
    g.keepAlive.onRenewed((ttl) => renewals.push(ttl));
    await c.put('alive', 'v', { lease: g.id });
    await sleep(4_500);
    expect((await c.get('alive')).kvs.length).toBe(1);
    expect(renewals.length).toBeGreaterThanOrEqual(3);
    expect(renewals.every((t) => t === 2)).toBe(true);
    await c.lease.revoke(g.id);
    expect(g.keepAlive.active).toBe(false);
    expect((await c.get('alive')).kvs).toEqual([]);
  });

  it('keep-alive of a lease revoked by someone else reports the lease lost', async () => {
    const g = await c.lease.grant(10);
    const ka = c.lease.keepAlive(g.id);
    const other = new Client({ endpoints: [srv.endpoint] });
    try {
      await sleep(100);
      await other.lease.revoke(g.id);
    } finally {
      other.close();
    }
    const lostBy: EtcdError[] = [];
    ka.onLost((e) => lostBy.push(e));
    const err = await Promise.race([ka.lost, sleep(8_000).then(() => null)]);
    expect(err).toBeInstanceOf(LeaseNotFoundError);
    expect(lostBy).toEqual([err]);
    expect(ka.active).toBe(false);
  });

  it('without keep-alive the key expires', async () => {
    const g = await c.lease.grant(2);
    await c.put('dies', 'v', { lease: g.id });
    await sleep(3_500);
    expect((await c.get('dies')).kvs).toEqual([]);
  });
});
