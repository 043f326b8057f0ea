/**
 * Golden comparison for watch and lease: etcd's own `etcdctl` (3.4) must print the same
 * against the server under test as against a real etcd for the same scripted scenario,
 * including the output of long-running `etcdctl watch` / `watch -i` / `lease keep-alive`
 * children that run while other etcdctl processes write.
 *
 *   npx vitest run test/e2e/etcdctl-watch-lease.test.ts                # etcd vs cairn (needs `npm run build`)
 *   CAIRN_COMPAT_AGAINST=etcd npx vitest run test/e2e/etcdctl-watch-lease.test.ts   # etcd vs etcd
 *
 * Transcripts: $TMPDIR/cairn-e2e-etcdctl-{watch,lease}.{etcd,<target>-under-test}.txt.
 *
 * Normalised on top of the KV harness (IDs, raft term, endpoint, timestamps): lease IDs
 * (LEASE_1, LEASE_2, ... by first appearance, hex and decimal), remaining TTLs within
 * [granted-5, granted] (a placeholder; anything else stays as printed), and runs of
 * identical `lease keep-alive` lines (their number depends on timing; a check step
 * asserts there were at least two). Watchers are waited for in lockstep (see
 * test/helpers/etcdctl-scenario.ts), so event batching is deterministic.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type ServerProc } from '../../bench/lib/procs';
import {
  matchAll,
  matchKey,
  matchPrefix,
  matchRange,
  Scenario,
  sleep,
} from '../helpers/etcdctl-scenario';
import { allDifferences, firstDifference, renderTranscript, type StepResult } from '../helpers/etcdctl-transcript';
import { startAll, startUnderTest, targetUnderTest } from '../helpers/servers';

const target = targetUnderTest();
const outDir = os.tmpdir();

// ---------------------------------------------------------------------------------
// Watch. Revisions in comments assume a fresh store at revision 1.

async function watchScenario(sc: Scenario): Promise<void> {
  // ---- phase A: history
  await sc.ctl(['put', 'foo', 'v1'], { note: 'rev 2' });
  await sc.ctl(['put', 'foo', 'v2'], { note: 'rev 3' });
  await sc.ctl(['put', 'foo1', 'a'], { note: 'rev 4' });
  await sc.ctl(['txn'], { input: '\nput foo v3\nput foo2 b\ndel foo1\n\n\n', note: 'rev 5: three events in one txn' });
  await sc.ctl(['del', 'foo'], { note: 'rev 6' });
  await sc.ctl(['put', 'bar1', 'x'], { note: 'rev 7' });
  await sc.ctl(['put', 'foo', 'v4'], { note: 'rev 8' });

  // ---- phase B: watchers replaying history (no writes until they have printed it)
  await sc.startAll([
    { name: 'rev-key', args: ['watch', 'foo', '--rev', '2'], match: matchKey('foo'), expected: 5 },
    { name: 'rev-prefix-json', args: ['watch', '--prefix', 'foo', '--rev', '3', '-w', 'json'], match: matchPrefix('foo'), expected: 7 },
    { name: 'rev-prefix-prevkv', args: ['watch', 'foo', '--prefix', '--rev', '2', '--prev-kv'], match: matchPrefix('foo'), expected: 8 },
    { name: 'rev-range', args: ['watch', 'foo', 'foo2', '--rev', '1'], match: matchRange('foo', 'foo2'), expected: 7 },
    { name: 'rev-prevkv-json', args: ['watch', 'foo', '--rev', '5', '--prev-kv', '-w', 'json'], match: matchKey('foo'), expected: 3 },
  ]);
  for (const n of ['rev-key', 'rev-prefix-json', 'rev-prefix-prevkv', 'rev-range', 'rev-prevkv-json']) {
    await sc.waitEventsOf(n, 'history replay');
  }

  // ---- phase C: live watchers (connected + settled before the writes they must see)
  const exec = 'echo "exec $ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE rev=$ETCD_WATCH_REVISION"';
  await sc.startAll([
    { name: 'key', args: ['watch', 'foo'], match: matchKey('foo'), connect: true },
    { name: 'prefix', args: ['watch', '--prefix', 'foo'], match: matchPrefix('foo'), connect: true },
    { name: 'prefix-prevkv', args: ['watch', '--prefix', 'foo', '--prev-kv'], match: matchPrefix('foo'), connect: true },
    { name: 'prefix-json', args: ['watch', '--prefix', 'foo', '-w', 'json'], match: matchPrefix('foo'), connect: true },
    { name: 'exec', args: ['watch', 'zz', '--', 'sh', '-c', exec], match: matchKey('zz'), connect: true },
    { name: 'interactive', args: ['watch', '-i'], stdin: true, connect: true },
  ]);
  const inter = sc.bg('interactive');
  inter.write('watch foo\n');
  inter.match = matchKey('foo');
  await sleep(sc.settleMs);

  await sc.ctl(['put', 'foo', 'L1'], { note: 'rev 9', touched: ['foo'] });
  inter.write('watch --prefix bar\n');
  inter.match = matchAll(matchKey('foo'), matchPrefix('bar'));
  await sleep(sc.settleMs);
  await sc.ctl(['put', 'foo2', 'L2'], { note: 'rev 10', touched: ['foo2'] });
  await sc.ctl(['put', 'bar2', 'L3'], { note: 'rev 11', touched: ['bar2'] });
  await sc.ctl(['txn', '-w', 'json'], {
    input: 'value("foo") = "L1"\n\nput foo L4\nput foo3 c\ndel foo2\n\nput nope x\n\n',
    note: 'rev 12: three events, success branch',
    touched: ['foo', 'foo3', 'foo2'],
  });
  await sc.ctl(['put', 'bar2', 'L5', '--prev-kv'], { note: 'rev 13', touched: ['bar2'] });
  await sc.ctl(['del', 'foo', '--prefix'], { note: 'rev 14: deletes foo, foo3', touched: ['foo', 'foo3'] });
  await sc.ctl(['put', 'zz', 'exec me'], { note: 'rev 15', touched: ['zz'] });
  await sc.ctl(['put', 'foo', 'again'], { note: 'rev 16', touched: ['foo'] });
  await sc.ctl(['del', 'bar', '--prefix'], { note: 'rev 17: deletes bar1, bar2', touched: ['bar1', 'bar2'] });
  await sc.ctl(['txn'], {
    input: 'value("foo") = "nope"\n\nput bad 1\n\nput foo F\nput foo4 y\n\n',
    note: 'rev 18: failure branch, two events',
    touched: ['foo', 'foo4'],
  });
  await sc.ctl(['put', 'other', 'z'], { note: 'rev 19: watched by nobody', touched: ['other'] });
  await sc.ctl(['del', 'nothing'], { note: 'no revision, no event' });
  await sc.ctl(['del', 'zz'], { note: 'rev 20', touched: ['zz'] });
  await sc.ctl(['put', 'foo', 'last'], { note: 'rev 21', touched: ['foo'] });

  for (const n of [
    'rev-key',
    'rev-prefix-json',
    'rev-prefix-prevkv',
    'rev-range',
    'rev-prevkv-json',
    'key',
    'prefix',
    'prefix-prevkv',
    'prefix-json',
    'exec',
    'interactive',
  ]) {
    await sc.stop(n);
  }

  // ---- phase D: compaction
  await sc.ctl(['compaction', '10']);
  await sc.ctl(['watch', 'foo', '--rev', '9'], { note: 'below the compaction: canceled', timeoutMs: 15_000 });
  await sc.ctl(['watch', '--prefix', 'foo', '--rev', '2', '-w', 'json'], { note: 'compacted, json', timeoutMs: 15_000 });
  await sc.start('at-compact-rev', ['watch', '--prefix', 'foo', '--rev', '10', '-w', 'json'], {
    match: matchPrefix('foo'),
    expected: 10,
  });
  await sc.waitEventsOf('at-compact-rev', 'history from the compacted revision');
  await sc.ctl(['put', 'foo5', 'post-compaction'], { note: 'rev 22', touched: ['foo5'] });
  await sc.stop('at-compact-rev');
}

// ---------------------------------------------------------------------------------
// Lease

async function leaseScenario(sc: Scenario): Promise<void> {
  const l1 = await sc.grant(['lease', 'grant', '60']);
  const l2 = await sc.grant(['lease', 'grant', '90', '-w', 'json']);
  await sc.ctl(['put', `--lease=${l1}`, 'lk1', 'v1']);
  await sc.ctl(['put', `--lease=${l1}`, 'lk2', 'v2']);
  await sc.ctl(['put', 'lk3', 'v3', `--lease=${l2}`]);
  await sc.ctl(['get', 'lk1', '-w', 'json'], { note: 'lease field' });
  await sc.ctl(['get', 'lk', '--prefix', '-w', 'fields']);
  await sc.ctl(['lease', 'timetolive', l1]);
  await sc.ctl(['lease', 'timetolive', l1, '--keys']);
  await sc.ctl(['lease', 'timetolive', l1, '--keys', '-w', 'json']);
  await sc.ctl(['lease', 'timetolive', l2, '-w', 'fields']);
  await sc.ctl(['lease', 'list'], { note: 'ordered by expiry' });
  await sc.ctl(['lease', 'list', '-w', 'json']);
  await sc.ctl(['lease', 'keep-alive', '--once', l1]);
  await sc.ctl(['lease', 'keep-alive', '--once', l2, '-w', 'json']);
  await sc.ctl(['lease', 'timetolive', l1, '--keys']);

  // revoke deletes the keys
  await sc.ctl(['lease', 'revoke', l1]);
  await sc.ctl(['get', 'lk', '--prefix'], { note: 'lk1, lk2 gone' });
  await sc.ctl(['lease', 'timetolive', l1], { note: 'revoked: already expired' });
  await sc.ctl(['lease', 'timetolive', l1, '--keys', '-w', 'json']);
  await sc.ctl(['lease', 'revoke', l1], { note: 'error: not found' });
  await sc.ctl(['lease', 'keep-alive', '--once', l1], { note: 'error: not found' });
  await sc.ctl(['lease', 'revoke', '1234abcd'], { note: 'unknown lease' });
  await sc.ctl(['lease', 'timetolive', '1234abcd', '-w', 'json']);
  await sc.ctl(['put', '--lease=1234abcd', 'x', 'y'], { note: 'error: lease not found' });
  await sc.ctl(['lease', 'timetolive', 'nothex'], { note: 'client-side error' });
  await sc.ctl(['get', 'x']);

  // TTLs below the minimum are raised to it
  const short1 = await sc.grant(['lease', 'grant', '1'], 'raised to the minimum TTL');
  const short0 = await sc.grant(['lease', 'grant', '0', '-w', 'json'], 'raised to the minimum TTL');

  // keep-alive keeps a key alive past its TTL; revoke ends keep-alive
  const l5 = await sc.grant(['lease', 'grant', '3']);
  await sc.ctl(['put', `--lease=${l5}`, 'ka', 'alive']);
  const ka = await sc.start('keep-alive', ['lease', 'keep-alive', l5]);
  await sleep(5_000);
  const kept = ka.stdout.split('\n').filter((l) => l.includes('keepalived')).length;
  sc.check('keep-alive printed at least 2 "keepalived" lines in 5 s', kept >= 2, `${kept} lines: ${JSON.stringify(ka.stdout)}`);
  await sc.ctl(['get', 'ka'], { note: 'still there after 5 s > TTL 3 s' });
  await sc.ctl(['lease', 'timetolive', l5, '--keys']);
  await sc.ctl(['lease', 'revoke', l5]);
  await ka.waitExit(10_000);
  await sc.stop('keep-alive', { collapse: true, note: 'exits after the revoke' });
  await sc.ctl(['get', 'ka']);

  // expiry: a lease nobody keeps alive; its key disappears and a watcher sees the DELETE
  await sc.start('expiry-watch', ['watch', 'exp', '--prev-kv'], { match: matchKey('exp'), connect: true });
  const granted = Date.now();
  const l6 = await sc.grant(['lease', 'grant', '2']);
  await sc.ctl(['put', `--lease=${l6}`, 'exp', 'soon gone'], { touched: ['exp'] });
  await sc.ctl(['get', 'exp']);
  await sc.expectEvents(['exp'], 'lease expiry');
  const elapsed = Date.now() - granted;
  sc.check(
    'the 2 s lease expired between 1.5 s and 12 s after its grant',
    elapsed >= 1500 && elapsed <= 12_000 && sc.bg('expiry-watch').events() >= 2,
    `${elapsed} ms, ${sc.bg('expiry-watch').events()} events`,
  );
  await sc.ctl(['get', 'exp'], { note: 'gone' });
  await sc.ctl(['lease', 'timetolive', l6]);
  await sc.ctl(['lease', 'timetolive', l6, '--keys', '-w', 'json']);
  await sc.ctl(['lease', 'keep-alive', '--once', l6], { note: 'expired: not found' });
  await sc.stop('expiry-watch');

  // the minimum-TTL leases have expired by now (> 8 s later)
  await sc.ctl(['lease', 'timetolive', short1]);
  await sc.ctl(['lease', 'timetolive', short0, '-w', 'json']);
  await sc.ctl(['lease', 'list'], { note: 'only the 90 s lease is left' });
  await sc.ctl(['lease', 'revoke', l2]);
  await sc.ctl(['lease', 'list']);
  await sc.ctl(['get', '', '--prefix'], { note: 'every key' });
}

// ---------------------------------------------------------------------------------

async function runBoth(
  kind: string,
  ref: ServerProc,
  sut: ServerProc,
  scenario: (sc: Scenario) => Promise<void>,
): Promise<{ expected: StepResult[]; actual: StepResult[]; refSc: Scenario; sutSc: Scenario }> {
  const refSc = new Scenario('etcd', ref.endpoint, { port: ref.clientPort });
  const sutSc = new Scenario(target, sut.endpoint, { port: sut.clientPort });
  try {
    await Promise.all([scenario(refSc), scenario(sutSc)]);
  } finally {
    await Promise.all([refSc.stopAllUnrecorded(), sutSc.stopAllUnrecorded()]);
  }
  const expected = refSc.transcript();
  const actual = sutSc.transcript();
  fs.writeFileSync(path.join(outDir, `cairn-e2e-etcdctl-${kind}.etcd.txt`), renderTranscript(expected));
  fs.writeFileSync(path.join(outDir, `cairn-e2e-etcdctl-${kind}.${target}-under-test.txt`), renderTranscript(actual));
  return { expected, actual, refSc, sutSc };
}

function assertSame(kind: string, expected: StepResult[], actual: StepResult[], refSc: Scenario, sutSc: Scenario, sut: ServerProc): void {
  // The reference run must not have hit a harness timeout (else the harness is wrong).
  expect(refSc.problems, 'problems in the etcd (reference) run').toEqual([]);
  expect(expected.filter((r) => r.code === 0).length).toBeGreaterThan(expected.length / 2);
  const diff = firstDifference(expected, actual, { expected: 'etcd', actual: target });
  if (diff !== null) {
    const others = allDifferences(expected, actual);
    const summary = others
      .map((i) => `  step ${i}: ${(expected[i] ?? actual[i]).command}`)
      .slice(0, 40)
      .join('\n');
    throw new Error(
      `${diff.message}\n\n${others.length} differing step(s):\n${summary}\n\n` +
        (sutSc.problems.length > 0 ? `harness notes for ${target}:\n  ${sutSc.problems.join('\n  ')}\n\n` : '') +
        `transcripts: ${path.join(outDir, `cairn-e2e-etcdctl-${kind}.*.txt`)}\n` +
        `${target} running: ${String(sut.running)}; last output:\n${sut.output().slice(-3000)}`,
    );
  }
}

describe(`etcdctl watch/lease golden transcript: etcd vs ${target}`, () => {
  let servers: ServerProc[] = [];

  beforeAll(async () => {
    servers = await startAll([
      () => startEtcd({ name: 'watch-ref' }),
      () => startUnderTest({ name: 'watch-sut' }),
      () => startEtcd({ name: 'lease-ref' }),
      () => startUnderTest({ name: 'lease-sut' }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('watch: key, prefix, range, --rev history, --prev-kv, json, exec, -i, compaction', async () => {
    const [ref, sut] = servers;
    const { expected, actual, refSc, sutSc } = await runBoth('watch', ref, sut, watchScenario);
    assertSame('watch', expected, actual, refSc, sutSc, sut);
  }, 120_000);

  it('lease: grant, put --lease, timetolive, list, keep-alive, revoke, minimum TTL, expiry', async () => {
    const [, , ref, sut] = servers;
    const { expected, actual, refSc, sutSc } = await runBoth('lease', ref, sut, leaseScenario);
    assertSame('lease', expected, actual, refSc, sutSc, sut);
  }, 120_000);
});
