// A watch response is put together from bytes encoded once per event and per header
// (src/api/watch.ts, encodedResponse); it must be byte for byte what WatchResponse.encode
// writes for the same response, for every shape a watcher can get. Seeded: WATCH_ENC_SEED.
import { describe, expect, it } from 'vitest';
import { encodedResponse, eventToWire } from '../../src/api/watch';
import { etcdserverpb } from '../../src/gen/proto';
import { EventType, type KeyValue, type WatchEvent } from '../../src/mvcc/types';

const seed = Number(process.env.WATCH_ENC_SEED ?? Math.floor(Math.random() * 2 ** 31));

function rng(s: number): () => number {
  let x = s >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe(`watch responses encoded from shared parts (WATCH_ENC_SEED=${seed})`, () => {
  it('equal WatchResponse.encode byte for byte', () => {
    const r = rng(seed);
    const int = (n: number): number => Math.floor(r() * n);
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256)));
    const kv = (rev: number): KeyValue => ({
      key: bytes(1 + int(40)),
      value: bytes(int(3) === 0 ? 0 : int(2000)),
      createRevision: 1 + int(rev),
      modRevision: rev,
      version: 1 + int(1000),
      lease: int(3) === 0 ? BigInt(1 + int(2 ** 40)) : 0n,
    });
    for (let round = 0; round < 300; round++) {
      const revision = 1 + int(2 ** 40);
      const term = 1 + int(1000);
      const member = { header: (rev?: number) => ({ clusterId: 0x1234abcd, memberId: 0x55667788, revision: rev ?? 0, raftTerm: term }) };
      const events: WatchEvent[] = Array.from({ length: 1 + int(4) }, () => {
        const type = int(4) === 0 ? EventType.Delete : EventType.Put;
        const e: WatchEvent = { type, kv: kv(revision) };
        if (int(2) === 0) e.prevKv = kv(revision - 1);
        return e;
      });
      const watchId = [0, 1, 127, 128, 300, 2 ** 31 - 1, -1][int(7)];
      const expected = Buffer.from(etcdserverpb.WatchResponse.encode({ header: member.header(revision), watchId, events: events.map(eventToWire) }).finish());
      const got = encodedResponse(member, revision, watchId, events);
      expect(got.equals(expected), `round ${round}, watchId ${watchId}, seed ${seed}`).toBe(true);
      // Encoded again (from the caches) for another watcher: still the same bytes.
      expect(encodedResponse(member, revision, watchId, events).equals(expected)).toBe(true);
    }
  });
});
