/**
 * `npm run chaos -- --duration 60 --seed N --members 3 [--clients 6] [--keys 5]
 *   [--nemesis all|kill,pause,partition,net,member,transfer] [--net netns|loopback] [--no-pauses]`
 * Runs the chaos harness once and exits non-zero on any violation. See README.md.
 */
import { defaultNet, FAULT_KINDS, runChaos, type FaultKind } from './harness';

const USAGE =
  'usage: npm run chaos -- [--duration 60] [--seed N] [--members 3|5] [--clients 6] [--keys 5]\n' +
  `  [--nemesis all|${FAULT_KINDS.join(',')}] [--first kind,...] [--net netns|loopback] [--no-pauses]\n` +
  '  [--interval 2000-5000] [--fault-length 500-4000] [--out DIR]';

function kindList(v: string | boolean | undefined, name: string): FaultKind[] | undefined {
  if (v === undefined || v === 'all') return undefined;
  if (typeof v !== 'string') throw new Error(`--${name} needs a value`);
  const ks = v.split(',').map((k) => k.trim()).filter(Boolean);
  for (const k of ks) if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`--${name}: unknown fault kind ${k} (known: ${FAULT_KINDS.join(', ')})`);
  return ks as FaultKind[];
}

function range(v: string | boolean | undefined, name: string): [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)-(\d+)$/.exec(String(v));
  if (!m || Number(m[1]) > Number(m[2])) throw new Error(`--${name} must be MIN-MAX in ms, got ${String(v)}`);
  return [Number(m[1]), Number(m[2])];
}

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
    console.log(USAGE);
    return 0;
  }
  const net = args.net === undefined ? defaultNet() : String(args.net);
  if (net !== 'netns' && net !== 'loopback') throw new Error(`--net must be netns or loopback, got ${net}`);
  const seed = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : num(args.seed, 0, 'seed');
  console.log(`chaos seed: ${seed} (rerun with --seed ${seed})`);
  const r = await runChaos({
    durationS: num(args.duration, 60, 'duration'),
    seed,
    members: num(args.members, 3, 'members'),
    clients: num(args.clients, 6, 'clients'),
    keys: num(args.keys, 5, 'keys'),
    pauses: args.pauses !== false,
    nemesis: kindList(args.nemesis, 'nemesis'),
    required: kindList(args.first, 'first'),
    net,
    faultIntervalMs: range(args.interval, 'interval'),
    faultLengthMs: range(args['fault-length'], 'fault-length'),
    outDir: typeof args.out === 'string' ? args.out : undefined,
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
