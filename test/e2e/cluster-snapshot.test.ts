import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdctl } from '../../bench/lib/procs';
import { Cluster, startCairnCluster } from '../helpers/cluster';
import { grpcClient, pool, put } from '../helpers/watch-client';

// A member that falls further behind than the leader's log catches up through a snapshot
// (the leader's whole state streamed beside the Raft MsgSnap), and a member restarts from
// its own snapshot plus the WAL after it.

const KEYS = 5000;
/** 5000 values of 16 KiB: more bytes than the leader's peer queue holds for a stopped member (64 MiB). */
const VALUE = Buffer.alloc(16 * 1024, 0x61);
let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCairnCluster(3, { extraArgs: ['--snapshot-count', '500'] });
});
afterAll(async () => {
  await cluster?.destroy();
});

const hashes = async (): Promise<number[]> =>
  Promise.all(
    cluster.members.map(async (m) => {
      const r = await etcdctl(m.endpoint, ['endpoint', 'hashkv', '-w', 'json']);
      if (r.code !== 0) throw new Error(`hashkv on ${m.name}: ${r.stderr}`);
      return Number(JSON.parse(r.stdout)[0].HashKV.hash);
    }),
  );

describe('snapshots in a cairn cluster', () => {
  it('a member stopped while the log moved past its compaction point catches up through a snapshot', async () => {
    const leader = await cluster.leader();
    const lagging = cluster.members.find((m) => m !== leader)!;
    const writer = cluster.members.find((m) => m !== leader && m !== lagging)!;
    await lagging.kill9(); // at once: a graceful stop keeps replicating while client calls drain
    // More bytes than the leader's peer queue holds for the stopped member (64 MiB; the
    // entries of many proposals share one append, so counting messages is not enough),
    // so the old appends are dropped and only a snapshot can bring it back.
    const client = grpcClient(writer.endpoint);
    await pool(Array.from({ length: KEYS }, (_, i) => i), 32, (i) => put(client, `snap/${String(i).padStart(5, '0')}`, Buffer.concat([Buffer.from(`v${i}:`), VALUE])));
    client.close();
    expect(leader.logLines(/took a raft snapshot/).length).toBeGreaterThan(0);
    await lagging.start();
    await cluster.waitConverged(30_000, cluster.members);
    expect(lagging.logLines(/installed a snapshot/).length, `${lagging.name}:\n${lagging.output().slice(-3000)}\nleader ${leader.name}:\n${leader.output().slice(-3000)}`).toBeGreaterThan(0);
    const got = await etcdctl(lagging.endpoint, ['get', 'snap/', '--prefix', '--keys-only']);
    expect(got.stdout.split('\n').filter((l) => l.trim() !== '').length).toBe(KEYS);
    const h = await hashes();
    expect(new Set(h).size).toBe(1);
    // It keeps up afterwards, through the log.
    expect((await etcdctl(leader.endpoint, ['put', 'after', 'snapshot'])).code).toBe(0);
    const after = await etcdctl(lagging.endpoint, ['get', 'after', '--print-value-only']);
    expect(after.stdout.trim()).toBe('snapshot');
  });

  it('every member restarts from its snapshot and the WAL after it, with the same data', async () => {
    const before = await hashes();
    await cluster.stopAll();
    for (const m of cluster.members) await m.start();
    await cluster.waitForLeader(30_000, cluster.members);
    await cluster.waitConverged(30_000, cluster.members);
    expect(await hashes()).toEqual(before);
    const got = await etcdctl(cluster.members[0].endpoint, ['get', `snap/${String(KEYS - 1).padStart(5, '0')}`, '--print-value-only']);
    expect(got.stdout.trim().split(':')[0]).toBe(`v${KEYS - 1}`);
  });
});
