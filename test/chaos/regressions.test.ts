/**
 * Bugs the chaos harness and the fuzzer found, each pinned side by side with etcd 3.4.
 *
 * 1. (fuzz.test.ts, seed 171409264) Compact with a negative revision (int64 min, found as
 *    the wire bytes 08 80 80 80 80 80 80 80 80 80 01) was proposed, and applying it threw a
 *    plain Error ("invalid revision -9007199254740991") in mvcc: "apply failed", the
 *    member exited, and since the entry is committed, every member of the cluster did the
 *    same (and would again on replay). etcd answers OutOfRange "required revision has been
 *    compacted" for any revision at or below the compacted one, negative ones included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { RawKV } from '../helpers/raw-grpc';

const COMPACTS: Array<[string, string]> = [
  ['int64 min', '0880808080808080808001'],
  ['-2^32 (overlong varint)', '0880808080f0ffffffff01'],
  ['-1', '08ffffffffffffffffff01'],
  ['int64 max', '08ffffffffffffffff7f'],
];

describe('regressions found by chaos / fuzz runs', () => {
  const servers: Record<string, ServerProc> = {};
  beforeAll(async () => {
    [servers.etcd, servers.cairn] = await Promise.all([startEtcd(), startCairn()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  });

  it('Compact with a negative or future revision: etcd\'s error, the member stays up', async () => {
    const answers: Record<string, string[]> = {};
    for (const [name, s] of Object.entries(servers)) {
      const kv = new RawKV(s.endpoint);
      try {
        await kv.call('Put', { key: Buffer.from('k'), value: Buffer.from('v') });
        answers[name] = [];
        for (const [what, hex] of COMPACTS) {
          const r = await kv.raw('Compact', Buffer.from(hex, 'hex'), 5_000);
          answers[name].push(`${what}: ${r.ok ? 'OK' : `${r.code} ${r.details}`}`);
        }
        const after = await kv.tryCall('Range', { key: Buffer.from('k') }, 5_000);
        answers[name].push(`range after: ${after.ok ? Buffer.from(after.resp.kvs[0].value).toString() : `${after.code} ${after.details}`}`);
      } finally {
        kv.close();
      }
    }
    expect(answers.etcd).toEqual([
      'int64 min: 11 etcdserver: mvcc: required revision has been compacted',
      '-2^32 (overlong varint): 11 etcdserver: mvcc: required revision has been compacted',
      '-1: 11 etcdserver: mvcc: required revision has been compacted',
      'int64 max: 11 etcdserver: mvcc: required revision is a future revision',
      'range after: v',
    ]);
    expect(answers.cairn).toEqual(answers.etcd);
  }, 60_000);
});
