/**
 * `npm run chaos -- --duration 60 --seed N --members 3 [--clients 6] [--keys 5] [--no-pauses]`
 * Runs the chaos harness once and exits non-zero on any violation. See README.md.
 */
import { runChaos } from './harness';

function parseArgs(argv: string[]): Record<string, string | boolean> {
  const out: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') continue;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const [name, inline] = a.slice(2).split('=', 2);
    if (name.startsWith('no-')) out[name.slice(3)] = false;
    else if (inline !== undefined) out[name] = inline;
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[name] = argv[++i];
    else out[name] = true;
  }
  return out;
}

function num(v: string | boolean | undefined, def: number, name: string): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${String(v)}`);
  return n;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.help) {
    console.log('usage: npm run chaos -- [--duration 60] [--seed N] [--members 3] [--clients 6] [--keys 5] [--no-pauses]');
    return 0;
  }
  const seed = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : num(args.seed, 0, 'seed');
  console.log(`chaos seed: ${seed} (rerun with --seed ${seed})`);
  const r = await runChaos({
    durationS: num(args.duration, 60, 'duration'),
    seed,
    members: num(args.members, 3, 'members'),
    clients: num(args.clients, 6, 'clients'),
    keys: num(args.keys, 5, 'keys'),
    pauses: args.pauses !== false,
  });
  console.log(r.summary);
  for (const w of r.warnings) console.log(`warning: ${w}`);
  if (r.violations.length > 0) {
    console.log(`\n${r.violations.length} violations (seed ${seed}):`);
    for (const v of r.violations.slice(0, 50)) console.log(`- ${v}`);
    console.log(`member logs, watch logs and history in ${r.outDir}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.stack : e);
    process.exit(2);
  },
);
