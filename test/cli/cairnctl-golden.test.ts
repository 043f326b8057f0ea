/**
 * Golden comparison of cairnctl with etcdctl 3.4: the same command sequence is run
 * with etcdctl against one fresh server and with cairnctl against another fresh
 * server of the same kind; stdout, stderr and exit codes must be identical once IDs,
 * timestamps and endpoints are normalised (test/helpers/etcdctl-transcript.ts, plus
 * lease IDs and timings here). Needs `npm run build` (cairnctl runs from dist/).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupAll, etcdctl, makeTempDir, startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { describeStep, firstDifference, normalise, renderTranscript, type StepResult } from '../helpers/etcdctl-transcript';
import { CAIRNCTL, runTool, type ToolResult } from './golden-lib';

interface Step {
  /** Arguments, or a function of the lease ID granted by the last `lease grant` step. */
  args: string[] | ((lease: string) => string[]);
  input?: string;
  note?: string;
}

/** cairnctl against one endpoint, through the golden tests' runner. */
function cairnctl(endpoint: string, args: string[], input?: string): Promise<ToolResult> {
  return runTool('cairnctl', ['--endpoints', endpoint, ...args], { input });
}

/** Normalisation beyond the KV golden test's: lease IDs, timings, sizes of snapshots. */
function norm(text: string, endpoint: string, leases: Map<string, string>): string {
  let t = normalise(text, endpoint);
  for (const [hex, name] of leases) {
    t = t.split(hex).join(name);
    t = t.split(BigInt('0x' + hex).toString()).join(name);
  }
  // member IDs and peer URLs (random per server)
  t = t.replace(/\b[0-9a-f]{12,16}\b/g, '<HEX_ID>');
  t = t.replace(/"(ID|leader)":\d+/g, '"$1":<ID>').replace(/"ID" : \d+/g, '"ID" : <ID>');
  t = t.replace(/http:\/\/127\.0\.0\.1:\d+/g, '<URL>');
  // KV hashes cover lease IDs, which differ between servers
  t = t.replace(/"hash":\d+/g, '"hash":<HASH>').replace(/^(<ENDPOINT>|<URL>), \d+$/gm, '$1, <HASH>');
  t = t.replace(/"(raftIndex|raftAppliedIndex|dbSize|dbSizeInUse)":\d+/g, '"$1":<N>');
  t = t.replace(/took = [0-9.]+[µmn]?s/g, 'took = <TOOK>');
  t = t.replace(/"took":("[^"]*"|[0-9.e-]+)/g, '"took":<TOOK>');
  t = t.replace(/remaining\(\d+s\)/g, 'remaining(<TTL>s)');
  t = t.replace(/"ttl":\d+/g, '"ttl":<TTL>').replace(/"TTL" : \d+/g, '"TTL" : <TTL>');
  // Table widths follow the IDs' lengths (%x drops leading zeros; IDs differ per server):
  // compare table rows with their padding and border runs collapsed.
  t = t.replace(/^([+|].*)$/gm, (row) => row.replace(/-+/g, '-').replace(/ +/g, ' '));
  return t;
}

async function runAll(endpoint: string, steps: Step[], tool: 'etcdctl' | 'cairnctl', dir: string): Promise<StepResult[]> {
  const leases = new Map<string, string>();
  let lastLease = '0';
  const results: StepResult[] = [];
  for (let i = 0; i < steps.length; i++) {
    const st = steps[i];
    const args = (typeof st.args === 'function' ? st.args(lastLease) : st.args).map((a) => a.replace('<DIR>', dir));
    const r = tool === 'etcdctl' ? await etcdctl(endpoint, args, { input: st.input ?? '' }) : await cairnctl(endpoint, args, st.input);
    const m = /lease ([0-9a-f]{16}) granted/.exec(r.stdout);
    if (m && args.includes('grant')) {
      lastLease = m[1];
      if (!leases.has(m[1])) leases.set(m[1], `<LEASE_${leases.size + 1}>`);
    }
    const fix = (s: string): string => norm(s, endpoint, leases).split(dir).join('<DIR>');
    results.push({ index: i, command: describeStep({ args, input: st.input, note: st.note }), code: r.code, stdout: fix(r.stdout), stderr: fix(r.stderr) });
  }
  return results;
}

const TXN_SUCCESS = 'value("k1") = "v1"\n\nput k1 v2\nget k1\n\nget k2\n\n';
const TXN_FAILURE = 'value("k1") = "nope"\n\nput k1 v2\n\nget k1 --prefix\ndel k9\nput k3 "hello world" --prev-kv\n\n';
const TXN_MULTI = 'mod("k1") > "0"\nversion("k1") = "1"\ncreate("k1") != "0"\n\nput k1 x --prev-kv\ndel --prefix d/\n\n\n';

/** The sequence: everything cairnctl implements, in simple, json and fields output. */
const STEPS: Step[] = [
  { args: ['version'] },
  { args: ['put', 'k1', 'v1'] },
  { args: ['put', 'k1', 'v1', '--prev-kv'] },
  { args: ['-w', 'json', 'put', 'k2', 'v2', '--prev-kv'] },
  { args: ['-w', 'fields', 'put', 'k2', 'v2b', '--prev-kv'] },
  { args: ['put', 'stdin-key'], input: 'value from stdin\nline 2' },
  { args: ['put', 'bin', '\u00e9\u0001\t"q"'] },
  { args: ['put', 'd/1', 'a'] },
  { args: ['put', 'd/2', 'b'] },
  { args: ['put', 'd/3', 'c'] },
  { args: ['put', 'missing', '--ignore-value'], note: 'key not found' },
  { args: ['put', 'k1', '--ignore-value'] },
  { args: ['put'], note: 'bad args' },
  { args: ['put', 'k', 'v', '--lease=zz'] },
  { args: ['get', 'k1'] },
  { args: ['get', 'nothing'] },
  { args: ['-w', 'json', 'get', 'nothing'] },
  { args: ['-w', 'fields', 'get', 'nothing'] },
  { args: ['get', 'd/', '--prefix'] },
  { args: ['get', 'd/', '--prefix', '--keys-only'] },
  { args: ['get', 'd/', '--prefix', '--print-value-only'] },
  { args: ['get', 'd/', '--prefix', '--limit', '2', '-w', 'json'] },
  { args: ['get', 'd/2', '--from-key'] },
  { args: ['get', '', '--prefix', '--sort-by=MODIFY', '--order=DESCEND', '--limit=3'] },
  { args: ['get', 'd/1', 'd/3'] },
  { args: ['get', 'k1', '--rev', '2'] },
  { args: ['get', 'k1', '--consistency=s', '-w', 'fields'] },
  { args: ['get', 'k1', '--consistency=x'] },
  { args: ['get', 'k1', '--sort-by=foo'] },
  { args: ['get', 'k1', '--order=up'] },
  { args: ['get', 'k1', '--prefix', '--from-key'] },
  { args: ['get', 'k1', '--rev', '9999'], note: 'future revision' },
  { args: ['get'] },
  { args: ['--hex', 'get', 'bin'] },
  { args: ['-w', 'fields', 'get', 'bin'] },
  { args: ['-w', 'json', 'get', 'bin'] },
  { args: ['-w', 'table', 'get', 'k1'] },
  { args: ['-w', 'yaml', 'get', 'k1'] },
  { args: ['txn'], input: TXN_SUCCESS },
  { args: ['-w', 'json', 'txn'], input: TXN_FAILURE },
  { args: ['-w', 'fields', 'txn'], input: TXN_FAILURE },
  { args: ['txn', '-i'], input: TXN_SUCCESS },
  { args: ['txn'], input: TXN_MULTI },
  { args: ['txn'], input: 'bad("k1") = "v1"\n\n\n' },
  { args: ['txn'], input: 'value(k1) = "v1"\n\n\n' },
  { args: ['txn'], input: '\nfoo bar\n\n' },
  { args: ['txn'], input: '\nput a\n\n' },
  { args: ['txn'], input: '' },
  { args: ['txn'], input: 'value("k1") = "x"\n' },
  { args: ['txn', 'extra'] },
  { args: ['del', 'nothing'] },
  { args: ['del', 'd/1', '--prev-kv'] },
  { args: ['-w', 'json', 'del', 'd/', '--prefix', '--prev-kv'] },
  { args: ['-w', 'fields', 'del', 'stdin-key', '--prev-kv'] },
  { args: ['del', 'a', 'b', 'c'] },
  { args: ['del', 'a', '--prefix', '--from-key'] },
  { args: ['lease', 'grant', '100'] },
  { args: (l) => ['put', 'lk', 'lv', '--lease', l] },
  { args: (l) => ['lease', 'timetolive', l] },
  { args: (l) => ['lease', 'timetolive', l, '--keys'] },
  { args: (l) => ['-w', 'json', 'lease', 'timetolive', l, '--keys'] },
  { args: (l) => ['-w', 'fields', 'lease', 'timetolive', l, '--keys'] },
  { args: (l) => ['lease', 'keep-alive', '--once', l] },
  { args: (l) => ['-w', 'json', 'lease', 'keep-alive', '--once', l] },
  { args: ['lease', 'list'] },
  { args: ['-w', 'json', 'lease', 'list'] },
  { args: (l) => ['lease', 'revoke', l] },
  { args: (l) => ['lease', 'timetolive', l] },
  { args: (l) => ['-w', 'json', 'lease', 'timetolive', l] },
  { args: ['get', 'lk'] },
  { args: ['lease', 'revoke', '1234'] },
  { args: ['lease', 'revoke', 'zz'] },
  { args: ['lease', 'keep-alive', '--once', '1234'] },
  { args: ['lease', 'grant'] },
  { args: ['lease', 'grant', 'x'] },
  { args: ['-w', 'json', 'lease', 'grant', '60'] },
  { args: ['-w', 'fields', 'lease', 'grant', '60'] },
  { args: ['member', 'list'] },
  { args: ['-w', 'json', 'member', 'list'] },
  { args: ['-w', 'fields', 'member', 'list'] },
  { args: ['-w', 'table', 'member', 'list'] },
  { args: ['endpoint', 'health'] },
  { args: ['-w', 'json', 'endpoint', 'health'] },
  { args: ['endpoint', 'hashkv'] },
  { args: ['-w', 'json', 'endpoint', 'hashkv', '--cluster'] },
  { args: ['endpoint', 'status', '-w', 'json'] },
  { args: ['alarm', 'list'] },
  { args: ['-w', 'json', 'alarm', 'list'] },
  { args: ['alarm', 'disarm'] },
  { args: ['defrag'] },
  { args: ['snapshot', 'save'] },
  { args: ['watch'] },
  { args: ['compaction', '5'] },
  { args: ['-w', 'json', 'compaction', '6', '--physical'] },
  { args: ['compaction', 'abc'] },
  { args: ['compaction'] },
  { args: ['get', 'k1', '--rev', '3'], note: 'compacted revision' },
  { args: ['watch', 'k1', '--rev', '2'], note: 'watch from a compacted revision' },
  { args: ['bogus'] },
  { args: ['gett', 'k1'] },
];

afterAll(async () => {
  await cleanupAll();
});

async function compare(kind: 'cairn' | 'etcd', steps: Step[]): Promise<void> {
  const start = (): Promise<ServerProc> => (kind === 'cairn' ? startCairn() : startEtcd());
  const [a, b] = await Promise.all([start(), start()]);
  const dir = makeTempDir('cairnctl-golden-');
  const expected = await runAll(a.endpoint, steps, 'etcdctl', dir);
  const actual = await runAll(b.endpoint, steps, 'cairnctl', dir);
  const out = path.join(dir, 'transcripts');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'etcdctl.txt'), renderTranscript(expected));
  fs.writeFileSync(path.join(out, 'cairnctl.txt'), renderTranscript(actual));
  const d = firstDifference(expected, actual, { expected: 'etcdctl', actual: 'cairnctl' });
  expect(d?.message ?? null).toBeNull();
}

describe('cairnctl against etcdctl', () => {
  it('prints what etcdctl prints, against cairn', async () => {
    await compare('cairn', STEPS);
  }, 240_000);

  it('prints what etcdctl prints, against a real etcd', async () => {
    const few = STEPS.filter((s) => typeof s.args !== 'function' && !s.args.includes('lease'));
    await compare('etcd', few);
  }, 240_000);

  it('refuses DNS SRV discovery, which it does not implement, with exit code 4', async () => {
    const srv = await startCairn();
    const r = await cairnctl(srv.endpoint, ['--discovery-srv', 'example.com', 'get', 'k1']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/^Error: --discovery-srv is not supported by cairnctl/);
  }, 60_000);

  it('snapshot save writes the member backend', async () => {
    const srv = await startCairn();
    const dir = makeTempDir('cairnctl-snap-');
    const file = path.join(dir, 'snap.db');
    const r = await cairnctl(srv.endpoint, ['snapshot', 'save', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`Snapshot saved at ${file}\n`);
    expect(fs.statSync(file).size).toBeGreaterThan(0);
  }, 60_000);

  it('watch prints the events etcdctl watch prints', async () => {
    const srv = await startCairn();
    const spawnWatch = (bin: 'etcdctl' | 'cairnctl', args: string[]): { done: Promise<string>; kill: () => void } => {
      const cmd = bin === 'etcdctl' ? '/usr/bin/etcdctl' : process.execPath;
      const argv = bin === 'etcdctl' ? ['--endpoints', srv.endpoint, ...args] : [CAIRNCTL, '--endpoints', srv.endpoint, ...args];
      const child = spawn(cmd, argv, { env: { ...process.env, ETCDCTL_API: '3' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let buf = '';
      child.stdout.on('data', (x: Buffer) => (buf += x.toString('utf8')));
      return { done: new Promise((res) => child.once('close', () => res(buf))), kill: () => child.kill('SIGTERM') };
    };
    await etcdctl(srv.endpoint, ['put', 'w', '0']);
    const watchers = [
      spawnWatch('etcdctl', ['watch', 'w', '--prev-kv', '--rev', '1']),
      spawnWatch('cairnctl', ['watch', 'w', '--prev-kv', '--rev', '1']),
      spawnWatch('etcdctl', ['-w', 'json', 'watch', '--prefix', 'w', '--rev', '1']),
      spawnWatch('cairnctl', ['-w', 'json', 'watch', '--prefix', 'w', '--rev', '1']),
    ];
    await new Promise((r) => setTimeout(r, 1500)); // every watcher connected and caught up
    await etcdctl(srv.endpoint, ['put', 'w', '1']);
    await new Promise((r) => setTimeout(r, 300));
    await etcdctl(srv.endpoint, ['del', 'w']);
    await new Promise((r) => setTimeout(r, 2000));
    for (const w of watchers) w.kill();
    const outs = await Promise.all(watchers.map((w) => w.done));
    expect(outs[0]).toContain('DELETE');
    expect(outs[1]).toBe(outs[0]);
    expect(outs[3]).toBe(outs[2]);
  }, 60_000);
});
