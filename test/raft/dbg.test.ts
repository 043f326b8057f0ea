import { it } from 'vitest';
import { Simulator } from './sim';
it('dbg', () => {
  const seed = Number(process.env.SEED);
  const sim = new Simulator({ seed, nodes: seed % 2 === 0 ? 3 : 5, chaosTicks: 200, livenessTicks: 1500, trace: true });
  try { sim.run(); } catch (e) { console.log(sim.log.slice(-Number(process.env.N ?? 40)).join('\n')); console.log(sim.describe()); console.log((e as Error).stack); }
});
