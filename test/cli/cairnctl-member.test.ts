/**
 * member add / update / promote / remove and move-leader: etcdctl and cairnctl run the
 * same steps against the same 3-member cairn cluster, one after the other (each run
 * leaves the membership as it found it), and print the same once IDs are normalised.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupAll, freePort, makeTempDir } from '../../bench/lib/procs';
import { CairnCli } from '../helpers/cli';
import { startCairnCluster, type Cluster } from '../helpers/cluster';
import { expectSame, normAll, runSteps, runTool, type GStep } from './golden-lib';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCairnCluster(3);
  // A member learns its peers' client URLs as they announce them: wait until the first
  // member lists all three, so both runs see the same member list.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await runTool('etcdctl', ['--endpoints', cluster.members[0].endpoint, '-w', 'json', 'member', 'list']);
    if ((r.stdout.match(/clientURLs/g) ?? []).length === 3 || Date.now() > deadline) break;
    await new Promise((res) => setTimeout(res, 200));
  }
}, 60_000);

afterAll(async () => {
  await cluster?.destroy();
  await cleanupAll();
});

/** The hex ID of a member that is not the leader, from `endpoint status --cluster -w json`. */
function follower(stdout: string): Record<string, string> {
  const leader = /"leader":(\d+)/.exec(stdout)?.[1] ?? '';
  for (const m of stdout.matchAll(/"member_id":(\d+)/g)) if (m[1] !== leader) return { follower: BigInt(m[1]).toString(16), leader: BigInt(leader).toString(16) };
  return {};
}

const hexOfJsonMember = (stdout: string): Record<string, string> => {
  const m = /"member":\{"ID":(\d+)/.exec(stdout);
  return m ? { id: BigInt(m[1]).toString(16) } : {};
};

const STEPS: GStep[] = [
  { args: ['member', 'add', 'l1', '--peer-urls', 'http://127.0.0.1:{p}1', '--learner'], capture: { id: /Member\s+([0-9a-f]+) added/ } },
  { args: ['member', 'list'], note: 'the learner is unstarted', sortLines: true },
  { args: ['member', 'update', '{id}', '--peer-urls', 'http://127.0.0.1:{p}2'] },
  { args: ['-w', 'json', 'member', 'update', '{id}', '--peer-urls', 'http://127.0.0.1:3,http://127.0.0.1:{p}4'] },
  { args: ['-w', 'json', 'member', 'list'] },
  { args: ['-w', 'fields', 'member', 'update', '{id}', '--peer-urls', 'http://127.0.0.1:{p}3'], note: 'updated, then the printer refuses' },
  { args: ['member', 'promote', '{id}'], note: 'the learner never started: not in sync' },
  { args: ['member', 'remove', '{id}'] },
  { args: ['member', 'remove', '{id}'], note: 'gone' },
  { args: ['member', 'promote', '{id}'], note: 'gone' },
  { args: ['member', 'update', '{id}', '--peer-urls', 'http://127.0.0.1:{p}3'], note: 'gone' },
  { args: ['-w', 'json', 'member', 'add', 'l2', '--peer-urls', 'http://127.0.0.1:{p}5', '--learner'], captureFn: hexOfJsonMember },
  { args: ['-w', 'json', 'member', 'remove', '{id}'] },
  { args: ['-w', 'table', 'member', 'add', 'l3', '--peer-urls', 'http://127.0.0.1:{p}6', '--learner'], note: 'added, then the printer refuses' },
  { args: ['member', 'list'], sortLines: true, captureFn: (o) => ({ id: /^([0-9a-f]+), unstarted/m.exec(o)?.[1] ?? '' }) },
  { args: ['-w', 'table', 'member', 'remove', '{id}'] },
  { args: ['member', 'add', 'v1', '--peer-urls', 'http://127.0.0.1:7,http://127.0.0.1:{p}8'], capture: { id: /Member\s+([0-9a-f]+) added/ }, note: 'a voter' },
  { args: ['member', 'remove', '{id}'] },
  { args: ['member', 'add'] },
  { args: ['member', 'add', 'a', 'b', 'http://x:1'] },
  { args: ['member', 'add', 'a'] },
  { args: ['member', 'add', 'a', '--peer-urls', 'bad'] },
  { args: ['member', 'add', 'a', '--peer-urls', 'http://127.0.0.1'] },
  { args: ['member', 'add', 'a', '--peer-urls', 'http://127.0.0.1:9/path'] },
  { args: ['member', 'remove'] },
  { args: ['member', 'remove', 'zz'] },
  { args: ['member', 'remove', '1', '2'] },
  { args: ['member', 'update', '12'] },
  { args: ['member', 'promote'] },
  { args: ['member', 'promote', 'xyz'] },
];

const MOVE_STEPS: GStep[] = [
  { args: ['endpoint', 'status', '--cluster', '-w', 'json'], captureFn: follower, project: (r) => String(r.code) },
  { args: ['move-leader', '{follower}'] },
  { args: ['endpoint', 'status', '--cluster', '-w', 'json'], captureFn: follower, project: (r) => String(r.code) },
  { args: ['-w', 'json', 'move-leader', '{follower}'] },
  { args: ['endpoint', 'status', '--cluster', '-w', 'json'], captureFn: follower, project: (r) => String(r.code) },
  { args: ['-w', 'fields', 'move-leader', '{follower}'], note: 'moved, then the printer refuses' },
  { args: ['endpoint', 'status', '--cluster', '-w', 'json'], captureFn: follower, project: (r) => String(r.code) },
  { args: ['move-leader', '{leader}'], note: 'to itself' },
  { args: ['move-leader', '1234'] },
  { args: ['move-leader'] },
  { args: ['move-leader', 'zz'] },
  { args: ['move-leader', '1', '2'] },
];

describe('cairnctl member / move-leader against etcdctl', () => {
  it('prints what etcdctl prints, on the same cairn cluster', async () => {
    const eps = cluster.members.map((m) => m.endpoint);
    // One endpoint: etcdctl round-robins between endpoints, and the members' answers may
    // differ (a member may not know every peer's client URLs yet).
    const one = ['--endpoints', eps[0]];
    // Distinct peer URLs per run: a removed member's ID (derived from its URLs) stays taken.
    const expected = await runSteps('etcdctl', one, STEPS, eps, '', { p: '1' });
    const actual = await runSteps('cairnctl', one, STEPS, eps, '', { p: '2' });
    expectSame(expected, actual, 'member');
    const all = ['--endpoints', eps.join(',')];
    expectSame(await runSteps('etcdctl', all, MOVE_STEPS, eps), await runSteps('cairnctl', all, MOVE_STEPS, eps), 'move-leader');
  }, 180_000);

  it('move-leader with only followers as endpoints says no leader was given', async () => {
    const followers = [];
    for (const m of cluster.members) {
      const r = await runSteps('etcdctl', ['--endpoints', m.endpoint], [{ args: ['endpoint', 'status'] }], []);
      if (/, false, /.test(r[0].stdout)) followers.push(m.endpoint);
    }
    const g = ['--endpoints', followers.join(',')];
    const steps: GStep[] = [{ args: ['move-leader', '1'] }];
    expectSame(await runSteps('etcdctl', g, steps, followers), await runSteps('cairnctl', g, steps, followers), 'move-leader-followers');
  }, 60_000);
});

describe('cairnctl member promote of a running learner', () => {
  it('prints what etcdctl prints once the learner has caught up', async () => {
    const ep = cluster.members[0].endpoint;
    const results: Record<string, string> = {};
    for (const tool of ['etcdctl', 'cairnctl'] as const) {
      const name = `learner-${tool}`;
      const [clientPort, peerPort] = [await freePort(), await freePort()];
      const peer = `http://127.0.0.1:${peerPort}`;
      const add = await runTool(tool, ['--endpoints', ep, 'member', 'add', name, '--peer-urls', peer, '--learner']);
      expect(add.code, add.stderr).toBe(0);
      const id = /Member\s+([0-9a-f]+) added/.exec(add.stdout)![1];
      const initialCluster = /ETCD_INITIAL_CLUSTER="([^"]*)"/.exec(add.stdout)![1];
      const learner = new CairnCli([
        '--name', name, '--data-dir', makeTempDir(`cairnctl-${name}-`),
        '--listen-client-urls', `http://127.0.0.1:${clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'existing',
        '--heartbeat-interval', '50', '--election-timeout', '500',
      ]);
      await learner.waitFor(/ready to serve client requests/, 30_000);
      // Promotion succeeds once the learner's log is close to the leader's.
      let r = await runTool(tool, ['--endpoints', ep, 'member', 'promote', id]);
      for (let i = 0; i < 50 && r.code !== 0; i++) {
        await new Promise((res) => setTimeout(res, 200));
        r = await runTool(tool, ['--endpoints', ep, 'member', 'promote', id]);
      }
      results[tool] = `${r.code}\n${normAll(r.stdout, [ep])}`;
      const again = await runTool(tool, ['--endpoints', ep, 'member', 'promote', id]);
      results[tool] += `\n${again.code}\n${normAll(again.stderr, [ep])}`;
      const rm = await runTool(tool, ['--endpoints', ep, 'member', 'remove', id]);
      expect(rm.code, rm.stderr).toBe(0);
      learner.signal('SIGKILL');
      await learner.waitExit();
    }
    expect(results.cairnctl).toBe(results.etcdctl);
    expect(results.etcdctl).toMatch(/^0\nMember <HEX_ID> promoted in cluster <HEX_ID>\n/);
  }, 120_000);
});
