import { afterEach, describe, expect, it } from 'vitest';
import { startCairnCluster, type Cluster } from '../../helpers/cluster';
import { Client, newMutex, newSession } from '../../../src/client';
import { sleep } from './helpers';

// A Mutex holder on a 3-member cairn cluster loses the member it talks to: its session's
// lease is kept alive through another member, so the lock stays held and the waiter waits.

let cluster: Cluster | null = null;
const clients: Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await cluster?.destroy();
  cluster = null;
});

describe('Mutex on a 3-member cairn cluster', () => {
  it('the holder member is killed: the lock stays held (keep-alive fails over), the waiter still waits', async () => {
    cluster = await startCairnCluster(3);
    const leader = await cluster.leader();
    const [victim, other] = cluster.members.filter((m) => m !== leader);
    const holderClient = new Client({ endpoints: [victim.endpoint, other.endpoint, leader.endpoint], dialTimeoutMs: 1_000 });
    const waiterClient = new Client({ endpoints: [other.endpoint, leader.endpoint], dialTimeoutMs: 1_000 });
    clients.push(holderClient, waiterClient);

    const ttl = 3;
    const hs = await newSession(holderClient, { ttl });
    const ws = await newSession(waiterClient, { ttl });
    const held = newMutex(hs, 'ha-lock');
    await held.lock();
    expect(holderClient.activeEndpoint).toBe(victim.endpoint);

    let acquired = false;
    const waiter = newMutex(ws, 'ha-lock');
    const waiting = waiter.lock().then(() => (acquired = true));
    await sleep(500);
    expect(acquired).toBe(false);

    await victim.kill9();
    // Several TTLs: without a keep-alive through another member the lease would expire.
    await sleep(ttl * 3 * 1000);
    expect(hs.isDone).toBe(false);
    expect(acquired).toBe(false);
    const g = await waiterClient.get(held.key() as string);
    expect(g.kvs).toHaveLength(1);
    expect(g.kvs[0].createRevision).toBe(held.revision);
    expect((await waiterClient.lease.timeToLive(hs.lease)).ttl).toBeGreaterThan(0);

    // The holder unlocks through a surviving member; the waiter gets the lock.
    await held.unlock();
    await waiting;
    expect(acquired).toBe(true);
    await hs.close();
    await ws.close();
  }, 120_000);
});
