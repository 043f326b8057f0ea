/**
 * Runs the chaos harness for ~40 s against a real 3-member cluster (kill -9 / restart and
 * SIGSTOP faults) with a fresh seed, and asserts zero violations: linearizability per key,
 * watches, acknowledged writes. Needs `npm run build` (npm test does it). The seed is
 * printed; rerun one with CHAOS_SEED=N (or `npm run chaos -- --seed N`). CHAOS_DURATION_S
 * overrides the duration.
 */
import { describe, expect, it } from 'vitest';
import { runChaos } from './harness';
import { seedFromEnv } from './rng';

const seed = seedFromEnv('CHAOS_SEED');
const durationS = Number(process.env.CHAOS_DURATION_S ?? 40);

describe('chaos', () => {
  it(`keeps linearizability, watches and acknowledged writes under kill -9 and pauses (seed ${seed})`, async () => {
    console.log(`chaos seed ${seed} (rerun: CHAOS_SEED=${seed} or npm run chaos -- --seed ${seed})`);
    const lines: string[] = [];
    const r = await runChaos({ durationS, seed, members: 3, clients: 6, keys: 5, log: (l) => lines.push(l) });
    console.log([...lines, r.summary, ...r.warnings].join('\n'));
    // The run must have done real work under real faults.
    expect(r.operations.ok).toBeGreaterThan(100);
    expect(r.ack.acknowledged).toBeGreaterThan(50);
    expect((r.faults.kill ?? 0) + (r.faults.pause ?? 0)).toBeGreaterThan(0);
    expect(r.violations, `seed ${seed}; history ${r.historyPath}\n${r.violations.slice(0, 20).join('\n')}`).toEqual([]);
    expect(r.ack.lost).toEqual([]);
    expect(r.linearizability.verdict === 'violation').toBe(false);
    expect(r.watch.ok).toBe(true);
  }, (durationS + 200) * 1000);
});
