/**
 * Shared pieces of cairnctl's golden tests: run a step list with etcdctl and with
 * cairnctl (against the same server, one after the other, or against two servers),
 * normalise what differs by nature (IDs, timestamps, ports, durations) and compare.
 * Steps may use values captured by earlier steps (`vars`), e.g. the ID of a member the
 * previous step added. Needs `npm run build` (cairnctl runs from dist/).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';
import { ETCDCTL_BIN, repoRoot } from '../../bench/lib/procs';
import { describeStep, firstDifference, normalise, renderTranscript, type StepResult } from '../helpers/etcdctl-transcript';

export const CAIRNCTL = path.join(repoRoot(), 'dist', 'src', 'bin', 'cairnctl.js');

export type Tool = 'etcdctl' | 'cairnctl';

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/** Run etcdctl or cairnctl with exactly these arguments (no implicit --endpoints). */
export function runTool(tool: Tool, args: string[], opts: RunOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ETCDCTL_') && !k.startsWith('ETCD_')) env[k] = v;
    Object.assign(env, { ETCDCTL_API: '3' }, opts.env ?? {});
    const [cmd, argv] = tool === 'etcdctl' ? [ETCDCTL_BIN, args] : [process.execPath, [CAIRNCTL, ...args]];
    const child = spawn(cmd, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdin.on('error', () => undefined);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export interface GStep {
  /** Arguments after the global --endpoints; `{name}` is replaced by vars[name]. */
  args: string[];
  input?: string;
  note?: string;
  /** Extra environment. */
  env?: NodeJS.ProcessEnv;
  /** Store values taken from this step's stdout (regexp group 1) in vars. */
  capture?: Record<string, RegExp>;
  /** Store values computed from this step's stdout in vars. */
  captureFn?: (stdout: string) => Record<string, string>;
  /** Compare stdout with its lines sorted (output ordered by random IDs). */
  sortLines?: boolean;
  /** Compare only the exit code and this function of the output (for output that depends on timing). */
  project?: (r: ToolResult) => string;
}

/** Normalisation of what differs between two servers or two runs by nature. */
export function normAll(text: string, endpoints: string[]): string {
  let t = text;
  for (const ep of endpoints) t = normalise(t, ep);
  t = t.replace(/"(ID|leader|cluster_id|member_id)":\d+/g, '"$1":<ID>').replace(/"(ID|MemberID|ClusterID)" : \d+/g, '"$1" : <ID>');
  // %x / %16x member and cluster IDs (%16x pads with spaces: collapse)
  t = t.replace(/ *\b[0-9a-f]{12,16}\b/g, (m) => (m.startsWith(' ') ? ' ' : '') + '<HEX_ID>');
  t = t.replace(/http:\/\/127\.0\.0\.1:\d+/g, '<URL>').replace(/127\.0\.0\.1:\d+/g, '<ADDR>');
  t = t.replace(/"raft_term":\d+/g, '"raft_term":<T>').replace(/"revision":\d+/g, '"revision":<REV>');
  // Member order follows the (random) member IDs.
  t = t.replace(/ETCD_INITIAL_CLUSTER="([^"]*)"/g, (_m, l: string) => `ETCD_INITIAL_CLUSTER="${l.split(',').sort().join(',')}"`);
  t = t.replace(/"members":\[\{(.*?)\}\]/g, (_m, l: string) => `"members":[{${l.split('},{').sort().join('},{')}}]`);
  t = t.replace(/^([+|].*)$/gm, (row) => row.replace(/-+/g, '-').replace(/ +/g, ' '));
  return t;
}

export async function runSteps(tool: Tool, globalArgs: string[], steps: GStep[], endpoints: string[], dir = '', initVars: Record<string, string> = {}): Promise<StepResult[]> {
  const vars: Record<string, string> = { ...initVars };
  const results: StepResult[] = [];
  for (let i = 0; i < steps.length; i++) {
    const st = steps[i];
    const args = st.args.map((a) => a.replace(/\{(\w+)\}/g, (_m, k: string) => vars[k] ?? `{${k}}`).replace('<DIR>', dir));
    const r = await runTool(tool, [...globalArgs, ...args], { input: st.input, env: st.env });
    for (const [k, re] of Object.entries(st.capture ?? {})) {
      const m = re.exec(r.stdout);
      if (m) vars[k] = m[1];
    }
    if (st.captureFn) Object.assign(vars, st.captureFn(r.stdout));
    const fix = (s: string): string => {
      let t = normAll(s, endpoints);
      if (dir !== '') t = t.split(dir).join('<DIR>');
      return t;
    };
    const sorted = (x: string): string => (st.sortLines ? x.split('\n').sort().join('\n') : x);
    const projected = st.project ? { stdout: st.project(r), stderr: '' } : { stdout: sorted(fix(r.stdout)), stderr: fix(r.stderr) };
    results.push({ index: i, command: describeStep({ args, input: st.input, note: st.note }), code: r.code, ...projected });
  }
  return results;
}

/** Expect the two transcripts to be the same; both are written to a temp dir for reading. */
export function expectSame(expected: StepResult[], actual: StepResult[], label: string): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cairnctl-${label}-`));
  fs.writeFileSync(path.join(dir, 'etcdctl.txt'), renderTranscript(expected));
  fs.writeFileSync(path.join(dir, 'cairnctl.txt'), renderTranscript(actual));
  const d = firstDifference(expected, actual, { expected: 'etcdctl', actual: 'cairnctl' });
  expect(d?.message ?? null, `transcripts in ${dir}`).toBeNull();
}
