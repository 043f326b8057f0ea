/**
 * Runs the chaos harness for ~60 s (the issue asks 60-120 s per CI run) against a real 3-member cluster, every member in a
 * network namespace of its own, with a fresh seed: the nemesis starts with a network
 * partition and a membership change (remove + add, or learner add + promote + remove),
 * then picks at random among kill -9, pause, partition, slow / lossy links, membership
 * changes and leader transfers. Asserts zero violations: linearizability per key,
 * watches, acknowledged writes. Needs `npm run build` (npm test does it) and root for the
 * namespaces: without them the test FAILS; CHAOS_NO_NETNS=1 opts out of partitions
 * explicitly (loopback, no network faults, said loudly). The seed is printed; rerun one
 * with CHAOS_SEED=N (or `npm run chaos -- --seed N --first partition,member`).
 * CHAOS_DURATION_S overrides the duration.
 */
import { describe, expect, it } from 'vitest';
import { defaultNet, runChaos, type FaultKind } from './harness';
import { seedFromEnv } from './rng';

const seed = seedFromEnv('CHAOS_SEED');
const durationS = Number(process.env.CHAOS_DURATION_S ?? 60);
const net = defaultNet();
const required: FaultKind[] = net === 'netns' ? ['partition', 'member'] : ['member'];

describe('chaos', () => {
  it(`keeps linearizability, watches and acknowledged writes under partitions, membership changes, kill -9 and pauses (seed ${seed})`, async () => {
    console.log(`chaos seed ${seed} (rerun: CHAOS_SEED=${seed} or npm run chaos -- --seed ${seed} --first ${required.join(',')})`);
    if (net !== 'netns') console.warn('*** CHAOS_NO_NETNS=1: this chaos run has NO network partitions (explicit opt-out) ***');
    const lines: string[] = [];
    const r = await runChaos({ durationS, seed, members: 3, clients: 6, keys: 5, net, required, faultIntervalMs: [1500, 3500], faultLengthMs: [500, 3000], log: (l) => lines.push(l) });
    console.log([...lines, r.summary, ...r.warnings].join('\n'));
    const count = (prefix: string): number => Object.entries(r.faults).filter(([k]) => k.startsWith(prefix) && !k.endsWith('failed')).reduce((s, [, v]) => s + v, 0);
    // The run must have done real work under real faults, the required ones included.
    expect(r.operations.ok).toBeGreaterThan(100);
    expect(r.ack.acknowledged).toBeGreaterThan(50);
    if (net === 'netns') expect(count('partition:'), `seed ${seed}: no partition was injected`).toBeGreaterThan(0);
    expect(count('member:add'), `seed ${seed}: no member was added`).toBeGreaterThan(0);
    expect(r.removedMembers.length, `seed ${seed}: no member was removed`).toBeGreaterThan(0);
    expect(r.violations, `seed ${seed}; history ${r.historyPath}\n${r.anomalies.slice(0, 5).join('\n')}`).toEqual([]);
    expect(r.ack.lost).toEqual([]);
    expect(r.linearizability.verdict === 'violation').toBe(false);
    expect(r.watch.ok).toBe(true);
  }, (durationS + 200) * 1000);
});
