/**
 * Bugs the chaos harness and the fuzzer found, each pinned side by side with etcd 3.4.
 *
 * 1. (fuzz.test.ts, seed 171409264) Compact with a negative revision (int64 min, found as
 *    the wire bytes 08 80 80 80 80 80 80 80 80 80 01) was proposed, and applying it threw a
 *    plain Error ("invalid revision -9007199254740991") in mvcc: "apply failed", the
 *    member exited, and since the entry is committed, every member of the cluster did the
 *    same (and would again on replay). etcd answers OutOfRange "required revision has been
 *    compacted" for any revision at or below the compacted one, negative ones included.
 * 2. (fuzz.test.ts, seed 929551252) Once a client raised the CORRUPT alarm (Alarm
 *    ACTIVATE, which etcd allows), cairn refused every proposal, the Alarm DEACTIVATE too:
 *    the cluster could never be written again. etcd's corrupt applier refuses data
 *    requests but lets alarms through, so CORRUPT can be cleared.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCairn, startEtcd, type ServerProc } from '../../bench/lib/procs';
import { etcdserverpb } from '../../src/gen/proto';
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
        answers[name].push(`range after: ${after.ok ? Buffer.from(after.resp.kvs[0].value ?? []).toString() : `${after.code} ${after.details}`}`);
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

  it('the CORRUPT alarm can be cleared again; meanwhile writes fail with etcd\'s error', async () => {
    const pb = etcdserverpb;
    const A = '/etcdserverpb.Maintenance/Alarm';
    const alarm = (r: etcdserverpb.IAlarmRequest): Buffer => Buffer.from(pb.AlarmRequest.encode(r).finish());
    const answers: Record<string, string[]> = {};
    for (const [name, s] of Object.entries(servers)) {
      const kv = new RawKV(s.endpoint);
      const out: string[] = (answers[name] = []);
      const show = (what: string, r: Awaited<ReturnType<RawKV['raw']>>, decode?: (b: Buffer) => string): void => {
        out.push(`${what}: ${r.ok ? `OK${decode ? ' ' + decode(r.bytes) : ''}` : `${r.code} ${r.details}`}`);
      };
      const alarms = (b: Buffer): string => pb.AlarmResponse.decode(b).alarms.map((a) => `${String(a.memberID)}/${a.alarm}`).join(',');
      try {
        show('activate', await kv.raw(A, alarm({ action: pb.AlarmRequest.AlarmAction.ACTIVATE, memberID: 12345, alarm: pb.AlarmType.CORRUPT })), alarms);
        show('put while corrupt', await kv.raw('Put', Buffer.from(pb.PutRequest.encode({ key: Buffer.from('c'), value: Buffer.from('1') }).finish())));
        show('deactivate', await kv.raw(A, alarm({ action: pb.AlarmRequest.AlarmAction.DEACTIVATE, memberID: 12345, alarm: pb.AlarmType.CORRUPT })), alarms);
        show('get', await kv.raw(A, alarm({ action: pb.AlarmRequest.AlarmAction.GET })), alarms);
        show('put after', await kv.raw('Put', Buffer.from(pb.PutRequest.encode({ key: Buffer.from('c'), value: Buffer.from('2') }).finish())));
      } finally {
        kv.close();
      }
    }
    expect(answers.etcd).toEqual(['activate: OK 12345/2', 'put while corrupt: 15 etcdserver: corrupt cluster', 'deactivate: OK 12345/2', 'get: OK ', 'put after: OK']);
    expect(answers.cairn).toEqual(answers.etcd);
  }, 60_000);
});
