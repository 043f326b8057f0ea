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
});
