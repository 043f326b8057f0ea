/**
 * Golden comparison: etcd's own `etcdctl` (3.4) against a real cairn process must
 * print exactly what it prints against a real etcd for the same sequence of commands
 * (exit code, stdout and stderr), apart from cluster/member IDs, raft term, the
 * endpoint address and the timestamps/UUIDs in etcdctl's own warning lines.
 *
 *   npx vitest run test/e2e/etcdctl-kv.test.ts                 # etcd vs cairn (needs `npm run build`)
 *   CAIRN_COMPAT_AGAINST=etcd npx vitest run test/e2e          # etcd vs etcd: validates the harness
 *
 * Both transcripts are written to $TMPDIR/cairn-e2e-etcdctl-kv.{etcd,<target>}.txt.
 *
 * Not covered because etcdctl 3.4 has no such flags: `get --count-only`,
 * `--min-mod-revision` / `--max-create-revision` style filters (3.5+); nested txns
 * (etcdctl's txn script cannot express them; the failure branch holds several ops).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type ServerProc } from '../../bench/lib/procs';
import {
  allDifferences,
  describeStep,
  firstDifference,
  renderTranscript,
  runSequence,
  type Step,
} from '../helpers/etcdctl-transcript';
import { startAll, startUnderTest, targetUnderTest } from '../helpers/servers';

/** A deterministic ~100 KiB value (printable, no newline) read by `put big` from stdin. */
function bigValue(): string {
  const parts: string[] = [];
  let n = 0;
  for (let i = 0; n < 100 * 1024; i++) {
    const chunk = `${i.toString(36).padStart(5, '0')}:abcdefghijklmnopqrstuvwxyz-`;
    parts.push(chunk);
    n += chunk.length;
  }
  return parts.join('').slice(0, 100 * 1024);
}

const BIG = bigValue();

// Revisions in comments assume a fresh store starts at revision 1 (as etcd does).
const STEPS: Step[] = [
  // ---- put: simple, json, fields, prev-kv, spaces, unicode, stdin, errors
  { args: ['put', 'foo', 'bar'], note: 'rev 2' },
  { args: ['put', 'foo1', 'bar1', '-w', 'json'], note: 'rev 3' },
  { args: ['put', 'foo2', 'hello world', '-w', 'fields'], note: 'rev 4, value with a space' },
  { args: ['put', 'foo3', 'héllo wörld ✓ 日本語 🙂'], note: 'rev 5, unicode value' },
  { args: ['put', 'key with spaces', '  padded value  '], note: 'rev 6' },
  { args: ['put', 'zoo', 'zval'], note: 'rev 7' },
  { args: ['put', 'foo', 'bar2', '--prev-kv'], note: 'rev 8' },
  { args: ['put', 'foo', 'bar3', '--prev-kv', '-w', 'json'], note: 'rev 9' },
  { args: ['put', 'foo1', 'bar1b', '--prev-kv', '-w', 'fields'], note: 'rev 10' },
  { args: ['put', 'k1', 'v3'], note: 'rev 11' },
  { args: ['put', 'k2', 'v1'], note: 'rev 12' },
  { args: ['put', 'k3', 'v2'], note: 'rev 13' },
  { args: ['put', 'k2', 'v1b'], note: 'rev 14' },
  { args: ['put', 'big'], input: BIG, note: 'rev 15, 100 KiB value from stdin' },
  { args: ['put', 'empty', ''], note: 'rev 16, empty value' },
  { args: ['put', 'newkey', 'x', '--prev-kv', '-w', 'json'], note: 'rev 17, prev-kv of a new key' },
  { args: ['put', '', 'x'], note: 'error: empty key' },

  // ---- get: formats
  { args: ['get', 'foo'] },
  { args: ['get', 'foo', '-w', 'json'] },
  { args: ['get', 'foo', '-w', 'fields'] },
  { args: ['get', 'foo', '--print-value-only'] },
  { args: ['get', 'foo3', '--hex'] },
  { args: ['get', 'foo3', '--hex', '-w', 'fields'] },
  { args: ['get', 'foo3', '-w', 'json'] },
  { args: ['get', 'key with spaces'] },
  { args: ['get', 'empty', '-w', 'json'] },
  { args: ['get', 'missing'] },
  { args: ['get', 'missing', '-w', 'json'] },
  { args: ['get', 'missing', '-w', 'fields'] },
  { args: ['get', 'big', '--print-value-only'] },
  { args: ['get', 'big', '-w', 'json'] },

  // ---- get: ranges, prefix, from-key, limit, sort, keys-only
  { args: ['get', 'foo', '--prefix'] },
  { args: ['get', 'foo', '--prefix', '--keys-only'] },
  { args: ['get', 'foo', '--prefix', '--keys-only', '-w', 'json'] },
  { args: ['get', 'foo', '--prefix', '--limit', '2', '-w', 'json'], note: 'count is the total, more=true' },
  { args: ['get', 'foo', 'foo3'], note: 'explicit range end [foo, foo3)' },
  { args: ['get', '', '--prefix', '--keys-only'], note: 'every key' },
  { args: ['get', 'foo2', '--from-key'] },
  { args: ['get', 'k', '--from-key', '--keys-only', '--limit', '3'] },
  { args: ['get', '', '--from-key', '-w', 'json', '--keys-only'] },
  { args: ['get', '--limit', '2', '--prefix', 'k', '--sort-by=MODIFY', '--order=DESCEND'] },
  { args: ['get', '--prefix', 'k', '--sort-by=VALUE'] },
  { args: ['get', '--prefix', 'k', '--sort-by=VERSION', '--order=DESCEND', '-w', 'json'] },
  { args: ['get', '--prefix', 'k', '--sort-by=CREATE', '--order=DESCEND'] },
  { args: ['get', '--prefix', 'k', '--sort-by=KEY', '--order=DESCEND', '--limit', '2', '-w', 'fields'] },
  { args: ['get', '--prefix', 'k', '--order=DESCEND'], note: 'order without sort-by sorts by key' },
  { args: ['get', 'foo', '--consistency=s'] },
  { args: ['get', 'foo', '--prefix', '--consistency=s', '-w', 'json'] },

  // ---- get at old revisions
  { args: ['get', 'foo', '--rev', '2'] },
  { args: ['get', 'foo', '--rev', '8', '-w', 'json'] },
  { args: ['get', 'foo', '--prefix', '--rev', '4', '--keys-only'] },
  { args: ['get', 'k2', '--rev', '12', '-w', 'fields'] },

  // ---- txn: compares on value / version / create / mod, both branches
  {
    args: ['txn'],
    input: 'value("foo") = "bar3"\n\nput t1 yes\nget foo\n\nput t1 no\n\n',
    note: 'value compare true -> success',
  },
  {
    args: ['txn', '-w', 'json'],
    input: 'version("foo") = "1"\n\nput t2 yes\n\nput t2 no\nget t2\ndel foo1\n\n',
    note: 'version compare false -> failure branch with several ops',
  },
  {
    args: ['txn', '-w', 'fields'],
    input: 'create("k2") < "20"\nmod("k3") > "0"\n\nget k --prefix\nput t3 both\n\nput t3 none\n\n',
    note: 'two compares true',
  },
  {
    args: ['txn', '-w', 'json'],
    input: 'mod("k") > "0"\n\nput k v2\n\nget k\n\n',
    note: 'mod of a missing key is 0 -> failure: get',
  },
  {
    args: ['txn'],
    input: 'version("missing") = "0"\nvalue("k1") != "v3"\n\nput bad 1\n\nput t4 ok\nget t1\ndel t2 --prev-kv\n\n',
    note: 'second compare false -> failure; del with prev-kv',
  },
  {
    args: ['txn', '-w', 'json'],
    input: 'value("foo") > "bar"\nversion("foo") < "10"\ncreate("foo") = "2"\n\nput tx1 a\nput tx2 b\ndel zoo\n\n\n',
    note: 'three compares true, several writes in one revision',
  },
  { args: ['txn'], input: '\nput t5 nocompare\n\n\n', note: 'no compares -> success' },
  {
    args: ['txn'],
    input: 'value("foo") = "bar3"\n\nput dup 1\nput dup 2\n\n\n',
    note: 'error: duplicate key in txn',
  },
  { args: ['get', 't', '--prefix', '-w', 'json'] },

  // ---- del
  { args: ['del', 'foo1'], note: 'deleted by the failure branch above: 0' },
  { args: ['del', 'foo2', '--prev-kv'] },
  { args: ['del', 'k', '--prefix', '--prev-kv', '-w', 'json'] },
  { args: ['del', 'nothing-here', '-w', 'fields'] },
  { args: ['del', 'tx', '--prefix', '-w', 'fields', '--prev-kv'] },
  { args: ['get', 'k2', '--rev', '14'], note: 'deleted key still visible at an old revision' },
  { args: ['put', 'k2', 'reborn', '-w', 'json'], note: 'recreate: version 1, new create_revision' },
  { args: ['get', 'k2', '-w', 'json'] },

  // ---- compaction and the compacted / future revision errors
  { args: ['compaction', '5'] },
  { args: ['get', 'foo', '--rev', '4'], note: 'error: compacted' },
  { args: ['get', 'foo', '--rev', '5', '-w', 'json'], note: 'the compacted revision itself is readable' },
  { args: ['get', 'foo', '--rev', '1000'], note: 'error: future revision' },
  { args: ['compaction', '3'], note: 'error: already compacted' },
  { args: ['compaction', '1000'], note: 'error: future revision' },
  { args: ['txn'], input: 'value("foo") = "bar3"\n\nget foo --rev=3\n\n\n', note: 'txn read below compaction' },
  { args: ['put', 'after', 'compaction'] },
  { args: ['compaction', '--physical', '20'] },
  { args: ['get', 'foo', '--rev', '19'], note: 'error: compacted (physical)' },
  { args: ['get', 'foo', '--rev', '20'] },

  // ---- del --from-key and final state
  { args: ['del', 's', '--from-key', '--prev-kv'] },
  { args: ['get', '', '--prefix', '-w', 'json'] },
  { args: ['del', '', '--from-key', '-w', 'json'] },
  { args: ['get', '', '--from-key', '-w', 'fields'] },
];

const target = targetUnderTest();
const outDir = os.tmpdir();

describe(`etcdctl golden transcript: etcd vs ${target}`, () => {
  let servers: ServerProc[] = [];

  beforeAll(async () => {
    servers = await startAll([() => startEtcd({ name: 'golden-ref' }), () => startUnderTest({ name: 'golden-sut' })]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('has a sequence of at least 40 commands', () => {
    expect(STEPS.length).toBeGreaterThanOrEqual(40);
  });

  it(`prints the same as against etcd (${STEPS.length} commands)`, async () => {
    const [ref, sut] = servers;
    const [expected, actual] = await Promise.all([runSequence(ref.endpoint, STEPS), runSequence(sut.endpoint, STEPS)]);
    fs.writeFileSync(path.join(outDir, 'cairn-e2e-etcdctl-kv.etcd.txt'), renderTranscript(expected));
    fs.writeFileSync(path.join(outDir, `cairn-e2e-etcdctl-kv.${target}-under-test.txt`), renderTranscript(actual));

    // Sanity: the reference transcript is meaningful (not all errors).
    expect(expected.filter((r) => r.code === 0).length).toBeGreaterThan(STEPS.length / 2);

    const diff = firstDifference(expected, actual, { expected: 'etcd', actual: target });
    if (diff !== null) {
      const others = allDifferences(expected, actual);
      const summary = others.map((i) => `  step ${i}: ${describeStep(STEPS[i])}`).slice(0, 40).join('\n');
      const serverTail = sut.output().slice(-3000);
      throw new Error(
        `${diff.message}\n\n${others.length} differing step(s):\n${summary}\n\n` +
          `transcripts: ${path.join(outDir, 'cairn-e2e-etcdctl-kv.*.txt')}\n` +
          `${target} running: ${String(sut.running)}; last output:\n${serverTail}`,
      );
    }
  }, 180_000);
});
