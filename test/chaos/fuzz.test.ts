/**
 * The gRPC fuzzer (fuzz.ts) against a running 3-member cairn cluster for FUZZ_BUDGET_S
 * (default 40 s): every method gets well-formed extreme requests, mutated and random
 * bytes, cut streams and lying HTTP/2 frames. Then: no finding (crash, hang, internal
 * error, malformed status), every member still running, and the key space consistent:
 * each member takes a write and reads every member's write back linearizably, and all
 * members hash the key space (HashKV) identically at the same revision.
 * Seeded: FUZZ_SEED=N reruns one (the seed is printed, and named in every failure).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdserverpb } from '../../src/gen/proto';
import { allMethods, formatReport, runFuzz } from './fuzz';
import { ChaosCluster } from './members';
import { seedFromEnv } from './rng';

const pb = etcdserverpb;
const seed = seedFromEnv('FUZZ_SEED');
const budgetS = Number(process.env.FUZZ_BUDGET_S ?? 40);

type Codec<T> = { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T };
function call<Req, Res>(c: grpc.Client, path: string, reqT: Codec<Req>, resT: Codec<Res>, req: Req, timeoutMs = 10_000): Promise<Res> {
  return new Promise((resolve, reject) =>
    c.makeUnaryRequest(path, (m: Req) => Buffer.from(reqT.encode(m).finish()), (b: Buffer) => resT.decode(b), req, { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    ),
  );
}

describe(`gRPC fuzzer (seed ${seed})`, () => {
  let cluster: ChaosCluster;
  beforeAll(async () => {
    cluster = await ChaosCluster.start({ members: 3 });
  }, 90_000);
  afterAll(async () => {
    await cluster?.destroy();
  });

  it(`every method answers random, mutated and extreme requests with a proper status, nobody crashes, the key space stays consistent (FUZZ_SEED=${seed})`, async () => {
    console.log(`fuzz seed ${seed} (rerun: FUZZ_SEED=${seed} npx vitest run test/chaos/fuzz.test.ts)`);
    const members = [...cluster.members];
    const report = await runFuzz(
      members.map((m) => ({ name: m.name, addr: m.addr, running: () => m.running })),
      { seed, budgetMs: budgetS * 1000, log: (l) => console.log(l) },
    );
    console.log(formatReport(report));
    expect(report.calls, `seed ${seed}`).toBeGreaterThan(200);
    expect(Object.keys(report.byMethod).length, `seed ${seed}: not every method was called`).toBe(allMethods().length);
    expect(report.findings, `seed ${seed}:\n${formatReport(report)}`).toEqual([]);
    for (const m of members) expect(m.running, `seed ${seed}: member ${m.name} stopped`).toBe(true);

    const clients = members.map((m) => new grpc.Client(m.addr, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 }));
    try {
      // A fuzzed Alarm may have raised NOSPACE / CORRUPT (etcd lets a client do that): clear them.
      const alarms = await call(clients[0], '/etcdserverpb.Maintenance/Alarm', pb.AlarmRequest, pb.AlarmResponse, { action: pb.AlarmRequest.AlarmAction.GET });
      for (const a of alarms.alarms ?? []) {
        await call(clients[0], '/etcdserverpb.Maintenance/Alarm', pb.AlarmRequest, pb.AlarmResponse, { action: pb.AlarmRequest.AlarmAction.DEACTIVATE, memberID: a.memberID, alarm: a.alarm });
      }
      // Every member takes a write; every member reads every write back (linearizable reads).
      for (const [i, c] of clients.entries()) {
        await call(c, '/etcdserverpb.KV/Put', pb.PutRequest, pb.PutResponse, { key: Buffer.from(`after-fuzz/${i}`), value: Buffer.from(`v${seed}-${i}`) });
      }
      for (const c of clients) {
        const r = await call(c, '/etcdserverpb.KV/Range', pb.RangeRequest, pb.RangeResponse, { key: Buffer.from('after-fuzz/'), rangeEnd: Buffer.from('after-fuzz0') });
        expect((r.kvs ?? []).map((kv) => `${Buffer.from(kv.key ?? []).toString()}=${Buffer.from(kv.value ?? []).toString()}`), `seed ${seed}`).toEqual(members.map((_, i) => `after-fuzz/${i}=v${seed}-${i}`));
      }
      // Same key space everywhere: HashKV at one revision all members have applied.
      const st = await cluster.waitConverged(30_000);
      const rev = st[0].revision;
      const hashes = await Promise.all(clients.map((c) => call(c, '/etcdserverpb.Maintenance/HashKV', pb.HashKVRequest, pb.HashKVResponse, { revision: rev })));
      const seen = hashes.map((h, i) => `${members[i].name}: hash ${h.hash} compact ${String(h.compactRevision)}`);
      console.log(`HashKV at revision ${rev}: ${seen.join('; ')}`);
      expect(new Set(hashes.map((h) => `${h.hash}/${String(h.compactRevision)}`)).size, `seed ${seed}: members disagree: ${seen.join('; ')}`).toBe(1);
    } finally {
      for (const c of clients) c.close();
    }
  }, (budgetS + 120) * 1000);
});
