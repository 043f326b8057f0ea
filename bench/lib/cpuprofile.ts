/**
 * Summarize a V8 .cpuprofile (as written by `node --cpu-prof`): self time per function,
 * heaviest first, so a benchmark report can say where a server spends its CPU.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface SelfTime {
  fn: string;
  where: string;
  selfMs: number;
  /** Share of all samples, in percent. */
  pct: number;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  if (dist !== -1) return url.slice(dist + '/dist/'.length);
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(file: string, top = 15): { totalMs: number; top: SelfTime[] } {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const totalMs = (prof.endTime - prof.startTime) / 1000;
  const hits = new Map<string, { fn: string; where: string; hits: number }>();
  let totalHits = 0;
  for (const n of prof.nodes) {
    const h = n.hitCount ?? 0;
    if (h === 0) continue;
    totalHits += h;
    const fn = n.callFrame.functionName === '' ? '(anonymous)' : n.callFrame.functionName;
    const where = n.callFrame.url === '' ? '' : `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    const key = `${fn}@${where}`;
    const e = hits.get(key) ?? { fn, where, hits: 0 };
    e.hits += h;
    hits.set(key, e);
  }
  const msPerHit = totalHits > 0 ? totalMs / totalHits : 0;
  const list = [...hits.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, top)
    .map((e) => ({ fn: e.fn, where: e.where, selfMs: Math.round(e.hits * msPerHit), pct: Math.round((e.hits / totalHits) * 1000) / 10 }));
  return { totalMs: Math.round(totalMs), top: list };
}

/** The .cpuprofile files in a directory, oldest first. */
export function profilesIn(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(dir, f))
    .sort((a, b) => fs.statSync(a).mtimeMs - fs.statSync(b).mtimeMs);
}
