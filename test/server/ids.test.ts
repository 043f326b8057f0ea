// Apply finds this member's own proposals by the request ID that leads the entry's bytes
// (RequestIdGenerator.ownKeyOf), without decoding them: the key must be the one ownKey
// gives the ID the proposal was made with, and no other member's ID may map to a key.
// Seeded: IDS_SEED=<n> replays a run.
import { describe, expect, it } from 'vitest';
import { cairnpb } from '../../src/gen/proto';
import { RequestIdGenerator } from '../../src/server/ids';
import { uint64 } from '../../src/server/convert';
import { Rand, seedFromEnv } from '../support/rand';

const seed = seedFromEnv('IDS_SEED');

describe(`request IDs read from encoded proposals (IDS_SEED=${seed})`, () => {
  it('ownKeyOf(encoded) is ownKey(id) for own IDs and -1 for others', () => {
    const rand = new Rand(seed);
    const r = (): number => rand.next();
    const u64 = (): bigint => (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
    for (let round = 0; round < 200; round++) {
      const memberId = u64();
      const nowMs = Math.floor(r() * 2 ** 42);
      const mine = new RequestIdGenerator(memberId, nowMs);
      // Another member whose ID shares the low 48 bits of the generator's IDs: same start time.
      const other = new RequestIdGenerator(memberId ^ (BigInt(1 + Math.floor(r() * 0xffff)) & 0xffffn), nowMs);
      const keys = new Set<number>();
      for (let i = 0; i < 20; i++) {
        const id = mine.next();
        const key = mine.ownKey(id);
        expect(key).toBe(Number(id & 0xffff_ffff_ffffn));
        keys.add(key);
        const encoded = cairnpb.InternalRequest.encode({ id: uint64(id), put: { key: Buffer.from('k'), value: Buffer.from('v') } }).finish();
        expect(mine.ownKeyOf(encoded)).toBe(key);
        const theirs = other.next();
        expect(Number(theirs & 0xffff_ffff_ffffn)).toBe(key);
        expect(mine.ownKey(theirs)).toBe(-1);
        expect(mine.ownKeyOf(cairnpb.InternalRequest.encode({ id: uint64(theirs), put: { key: Buffer.from('k') } }).finish())).toBe(-1);
      }
      expect(keys.size).toBe(20);
    }
  });

  it('does not read an ID from bytes that do not start with one', () => {
    const mine = new RequestIdGenerator(0xabcdn, 1_700_000_000_000);
    expect(mine.ownKeyOf(new Uint8Array(0))).toBe(-1);
    expect(mine.ownKeyOf(cairnpb.InternalRequest.encode({ put: { key: Buffer.from('k') } }).finish())).toBe(-1);
    const id = mine.next();
    const whole = cairnpb.InternalRequest.encode({ id: uint64(id) }).finish();
    expect(mine.ownKeyOf(whole)).toBe(mine.ownKey(id));
    expect(mine.ownKeyOf(whole.subarray(0, whole.length - 1))).toBe(-1); // the varint cut short
  });
});
