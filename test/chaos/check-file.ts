/**
 * Check a recorded history file: `npx vite-node test/chaos/check-file.ts -- <history.jsonl> [--timeout-ms N] [--max-steps N]`.
 * Prints the verdict per key; exit code 1 on a violation, 3 on unknown.
 */
import * as fs from 'node:fs';
import { checkHistory, parseHistory } from './checker';

const args = process.argv.slice(2).filter((a) => a !== '--');
const file = args.find((a) => !a.startsWith('--'));
if (!file) {
  console.error('usage: check-file.ts <history.jsonl> [--timeout-ms N] [--max-steps N]');
  process.exit(2);
}
const opt = (name: string): number | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : undefined;
};
const t0 = Date.now();
const r = checkHistory(parseHistory(fs.readFileSync(file, 'utf8')), { timeoutMs: opt('timeout-ms'), maxSteps: opt('max-steps') });
for (const k of r.keys) {
  console.log(`${k.key}: ${k.verdict} (${k.operations} ops, ${k.steps} steps)`);
  if (k.explanation) console.log(k.explanation);
}
console.log(`verdict: ${r.verdict} in ${Date.now() - t0} ms`);
process.exit(r.verdict === 'ok' ? 0 : r.verdict === 'violation' ? 1 : 3);
