import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdctl, freePort, makeTempDir } from '../../bench/lib/procs';
import { Cluster, ClusterMember, startCairnCluster } from '../helpers/cluster';
import { grpcClient, put, range } from '../helpers/watch-client';

// Membership changes while clients write: a member is added and joins, another is removed,
// and no acknowledged write is lost on the members that remain.

let cluster: Cluster;
let joiner: ClusterMember | undefined;
beforeAll(async () => {
  cluster = await startCairnCluster(3, { snapshotDist: false });
});
afterAll(async () => {
  await joiner?.kill9().catch(() => undefined);
  await cluster?.destroy();
});

describe('membership changes under a write load', () => {
  it('add a member and remove another while 8 writers run; every acknowledged write survives', async () => {
    const [a, b, c] = cluster.members;
    const clients = [grpcClient(a.endpoint), grpcClient(b.endpoint)];
    const acked = new Map<string, string>();
    let stop = false;
    let failures = 0;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `load/${w}/${i}`;
        try {
          await put(clients[w % 2], key, `v${i}`);
          acked.set(key, `v${i}`);
        } catch {
          failures++; // a write may fail while membership changes; only acknowledged ones count
        }
      }
    });
    const d = new ClusterMember('d', await freePort(), await freePort(), makeTempDir('cairn-member-d-'));
    joiner = d;
    const add = await etcdctl(a.endpoint, ['member', 'add', 'd', `--peer-urls=${d.peerUrl}`]);
    expect(add.code, add.stderr).toBe(0);
    d.args = [
      '--name', 'd', '--data-dir', d.dataDir,
      '--listen-client-urls', d.endpoint, '--advertise-client-urls', d.endpoint,
      '--listen-peer-urls', d.peerUrl, '--initial-advertise-peer-urls', d.peerUrl,
      '--initial-cluster', /ETCD_INITIAL_CLUSTER="([^"]+)"/.exec(add.stdout)![1], '--initial-cluster-state', 'existing',
      '--heartbeat-interval', '50', '--election-timeout', '500',
    ];
    await d.start(30_000);
    await new Promise((r) => setTimeout(r, 1000));
    const cStatus = await etcdctl(c.addr, ['endpoint', 'status', '-w', 'json']);
    const cId = BigInt(/"member_id":(\d+)/.exec(cStatus.stdout)![1]).toString(16);
    const remove = await etcdctl(a.endpoint, ['member', 'remove', cId]);
    expect(remove.code, remove.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await Promise.all(writers);
    await c.kill9();
    const remaining = [a, b, d];
    await cluster.waitConverged(30_000, remaining);
    expect(acked.size).toBeGreaterThan(100);
    for (const m of remaining) {
      const client = grpcClient(m.endpoint);
      const r = await range(client, 'load/', 'load0');
      client.close();
      const got = new Map(r.kvs.map((kv) => [Buffer.from(kv.key!).toString(), Buffer.from(kv.value!).toString()]));
      for (const [k, v] of acked) expect(got.get(k), `${k} on ${m.name}`).toBe(v);
    }
    const members = await etcdctl(a.endpoint, ['member', 'list']);
    expect(members.stdout.trim().split('\n')).toHaveLength(3);
    for (const cl of clients) cl.close();
    expect(failures).toBeLessThan(acked.size);
  });
});
