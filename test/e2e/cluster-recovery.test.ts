import { join } from 'node:path';
import { Level } from 'level';
import { afterAll, describe, expect, it } from 'vitest';
import { ServerProc, etcdctl, startCairn } from '../../bench/lib/procs';
import { Cluster, startCairnCluster } from '../helpers/cluster';

// Recovering from a lost quorum with --force-new-cluster, and refusing a data dir under
// another member's name.

let cluster: Cluster | undefined;
let single: ServerProc | undefined;
afterAll(async () => {
  await single?.stop();
  await cluster?.destroy();
});

describe('cluster recovery', () => {
  it('--force-new-cluster restarts one member alone with all its data, and it stays alone after a restart', async () => {
    cluster = await startCairnCluster(3);
    const a = cluster.member('a');
    for (let i = 0; i < 20; i++) expect((await etcdctl(cluster.member(i % 2 ? 'b' : 'c').endpoint, ['put', `rec/${i}`, `v${i}`])).code).toBe(0);
    await cluster.waitConverged(30_000, cluster.members);
    await cluster.stopAll();
    single = await startCairn({ name: 'a', dataDir: a.dataDir, extraArgs: ['--force-new-cluster'] });
    expect(single.output()).toContain('forced a new one-member cluster');
    const got = await etcdctl(single.endpoint, ['get', 'rec/', '--prefix', '--keys-only']);
    expect(got.stdout.split('\n').filter((l) => l.trim()).length).toBe(20);
    expect((await etcdctl(single.endpoint, ['put', 'rec/after', 'force'])).code).toBe(0);
    const members = await etcdctl(single.endpoint, ['member', 'list']);
    expect(members.stdout.trim().split('\n')).toHaveLength(1);
    expect(members.stdout).toContain(', a, ');
    await single.restart();
    expect((await etcdctl(single.endpoint, ['get', 'rec/after', '--print-value-only'])).stdout.trim()).toBe('force');
    expect((await etcdctl(single.endpoint, ['member', 'list'])).stdout.trim().split('\n')).toHaveLength(1);
  });

  it('a data dir is refused under another member name', async () => {
    const dataDir = single!.dataDir;
    await single!.stop();
    await expect(startCairn({ name: 'someone-else', dataDir, readyTimeoutMs: 5_000 })).rejects.toThrow(/belongs to member .{0,4}a.{0,4} \(/);
  });

  it('--experimental-initial-corrupt-check: a member whose data differs from its peers says so and stops', async () => {
    const c3 = await startCairnCluster(3, { extraArgs: ['--experimental-initial-corrupt-check'] });
    try {
      const a = c3.member('a');
      expect((await etcdctl(a.endpoint, ['put', 'check/me', 'original'])).code).toBe(0);
      await c3.waitConverged(30_000, c3.members);
      const victim = c3.member('c');
      await victim.stop();
      // Damage one stored value behind cairn's back (what a bad disk could do).
      const db = new Level<Buffer, Buffer>(join(victim.dataDir, 'member', 'db'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await db.open();
      let flipped = 0;
      for await (const [k, v] of db.iterator({ gte: Buffer.of(0x72), lt: Buffer.of(0x73) })) {
        if (!v.includes(Buffer.from('original'))) continue;
        const w = Buffer.from(v);
        w[w.length - 1] ^= 1;
        await db.put(k, w);
        flipped++;
      }
      await db.close();
      expect(flipped).toBe(1);
      await expect(victim.start(20_000)).rejects.toThrow();
      expect(victim.output()).toContain('found data inconsistency with peers');
    } finally {
      await c3.destroy();
    }
  });
});
