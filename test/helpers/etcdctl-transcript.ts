/**
 * Golden comparison of etcdctl transcripts: run one scripted sequence of etcdctl
 * commands against a server, normalise what legitimately differs between two
 * servers (cluster/member IDs, raft term, endpoint, timestamps, client UUIDs) and
 * find the first step where two transcripts differ.
 */
import { etcdctl } from '../../bench/lib/procs';

export interface Step {
  /** etcdctl arguments (after `--endpoints <endpoint>`). */
  args: string[];
  /** Written to etcdctl's stdin (txn scripts, put values read from stdin). */
  input?: string;
  /** What the step is for (shown in failure messages). */
  note?: string;
}

export interface StepResult {
  index: number;
  command: string;
  code: number;
  stdout: string;
  stderr: string;
}

/** A printable form of a step's command line (with the stdin size / script). */
export function describeStep(step: Step): string {
  const quoted = step.args.map((a) => (a === '' || /[\s"'\\$`!*?]/.test(a) || /[^\x20-\x7e]/.test(a) ? JSON.stringify(a) : a));
  let s = 'etcdctl ' + quoted.join(' ');
  if (step.input !== undefined) {
    s += step.input.length > 200 ? ` <stdin: ${step.input.length} chars>` : ` <stdin: ${JSON.stringify(step.input)}>`;
  }
  if (step.note) s += `   # ${step.note}`;
  return s;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Replace everything that legitimately differs between two servers running the same
 * sequence: IDs and raft term in json / fields output, and in etcdctl's client-side
 * warning lines the timestamp, the client UUID and the server's address.
 */
export function normalise(text: string, endpoint: string): string {
  const hostPort = endpoint.replace(/^[a-z]+:\/\//, '');
  let t = text;
  // -w json headers (also nested headers inside txn responses)
  t = t.replace(/"cluster_id":\d+/g, '"cluster_id":<CLUSTER_ID>');
  t = t.replace(/"member_id":\d+/g, '"member_id":<MEMBER_ID>');
  t = t.replace(/"raft_term":\d+/g, '"raft_term":<RAFT_TERM>');
  // -w fields headers
  t = t.replace(/"ClusterID" : \d+/g, '"ClusterID" : <CLUSTER_ID>');
  t = t.replace(/"MemberID" : \d+/g, '"MemberID" : <MEMBER_ID>');
  t = t.replace(/"RaftTerm" : \d+/g, '"RaftTerm" : <RAFT_TERM>');
  // etcdctl's zap warnings, e.g. the retry interceptor's
  // {"level":"warn","ts":"...","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed","target":"endpoint://client-<uuid>/127.0.0.1:PORT",...}
  t = t.replace(/"ts":"[^"]*"/g, '"ts":"<TS>"');
  t = t.replace(/"ts":[0-9.e+]+/g, '"ts":<TS>');
  t = t.replace(/client-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'client-<UUID>');
  t = t.replace(new RegExp(escapeRegExp(endpoint), 'g'), '<ENDPOINT>');
  t = t.replace(new RegExp(escapeRegExp(hostPort), 'g'), '<ENDPOINT>');
  return t;
}

/** Run the steps in order against one endpoint; results are normalised. */
export async function runSequence(endpoint: string, steps: readonly Step[], timeoutMs = 20_000): Promise<StepResult[]> {
  const out: StepResult[] = [];
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const r = await etcdctl(endpoint, step.args, { input: step.input, timeoutMs });
    out.push({
      index: i,
      command: describeStep(step),
      code: r.code,
      stdout: normalise(r.stdout, endpoint),
      stderr: normalise(r.stderr, endpoint),
    });
  }
  return out;
}

function clip(s: string, max = 1500): string {
  return s.length > max ? s.slice(0, max) + `... <${s.length - max} more chars>` : s;
}

/** The first line where a and b differ, with a little context, or null when equal. */
function firstLineDiff(a: string, b: string): string | null {
  if (a === b) return null;
  const al = a.split('\n');
  const bl = b.split('\n');
  const n = Math.max(al.length, bl.length);
  for (let i = 0; i < n; i++) {
    if (al[i] !== bl[i]) {
      const ai = al[i] === undefined ? '<no line>' : clip(JSON.stringify(al[i]), 600);
      const bi = bl[i] === undefined ? '<no line>' : clip(JSON.stringify(bl[i]), 600);
      // Character offset within the line where they start to differ.
      const x = al[i] ?? '';
      const y = bl[i] ?? '';
      let c = 0;
      while (c < x.length && c < y.length && x[c] === y[c]) c++;
      return `line ${i + 1}, column ${c + 1}:\n      expected ${ai}\n      actual   ${bi}`;
    }
  }
  return 'differ only in trailing content';
}

export interface Difference {
  index: number;
  message: string;
}

/**
 * Compare two normalised transcripts step by step. Returns the first differing step
 * with a readable message (expected = reference server, actual = server under test).
 */
export function firstDifference(
  expected: readonly StepResult[],
  actual: readonly StepResult[],
  labels: { expected: string; actual: string } = { expected: 'etcd', actual: 'cairn' },
): Difference | null {
  const n = Math.max(expected.length, actual.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i];
    const a = actual[i];
    if (e === undefined || a === undefined) {
      return { index: i, message: `step ${i}: transcript lengths differ (${expected.length} vs ${actual.length})` };
    }
    const parts: string[] = [];
    if (e.code !== a.code) parts.push(`  exit code: ${labels.expected} ${e.code}, ${labels.actual} ${a.code}`);
    const so = firstLineDiff(e.stdout, a.stdout);
    if (so !== null) parts.push(`  stdout differs at ${so}`);
    const se = firstLineDiff(e.stderr, a.stderr);
    if (se !== null) parts.push(`  stderr differs at ${se}`);
    if (parts.length > 0) {
      const message = [
        `first difference at step ${i} of ${n}: ${e.command}`,
        ...parts,
        `  --- ${labels.expected} (code ${e.code})`,
        `  stdout: ${clip(e.stdout)}`,
        `  stderr: ${clip(e.stderr)}`,
        `  --- ${labels.actual} (code ${a.code})`,
        `  stdout: ${clip(a.stdout)}`,
        `  stderr: ${clip(a.stderr)}`,
      ].join('\n');
      return { index: i, message };
    }
  }
  return null;
}

/** Every differing step (one line each), for a summary after the first difference. */
export function allDifferences(expected: readonly StepResult[], actual: readonly StepResult[]): number[] {
  const idx: number[] = [];
  const n = Math.max(expected.length, actual.length);
  for (let i = 0; i < n; i++) {
    const e = expected[i];
    const a = actual[i];
    if (e === undefined || a === undefined || e.code !== a.code || e.stdout !== a.stdout || e.stderr !== a.stderr) idx.push(i);
  }
  return idx;
}

/** A plain-text rendering of a transcript (written to disk for inspection). */
export function renderTranscript(results: readonly StepResult[]): string {
  return results
    .map((r) => `### step ${r.index}: ${r.command}\n# exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n`)
    .join('\n');
}
