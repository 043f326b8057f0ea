// The record arena against a plain model: every holder's record reads back as written
// through seeded random writes, overwrites, deletions and the evacuations they cause; views
// handed out never change; the arena holds at most about twice the live bytes.
// ARENA_SEED=<n> replays a run.

import { describe, expect, it } from 'vitest';
import { MAX_SLAB_BYTES, RecordArena, type RecordHolder, recordView } from '../../src/mvcc/record-arena';
import { Rand, seedFromEnv } from '../support/rand';

const seed = seedFromEnv('ARENA_SEED');
const seedNote = `ARENA_SEED=${seed}`;

const holder = (): RecordHolder => ({ slab: undefined, off: 0, len: 0 });

/** Bytes that say who wrote them and when, so a record read from the wrong place shows. */
function recordOf(r: Rand, id: number, version: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  for (let i = 0; i < len; i++) b[i] = (id * 31 + version * 7 + i + r.int(3)) & 0xff;
  return b;
}

describe('RecordArena', () => {
  it(`reads back what was written through random writes, deletions and evacuations (${seedNote})`, () => {
    const r = new Rand(seed);
    const arena = new RecordArena();
    const holders = Array.from({ length: 300 }, holder);
    const model: Array<Buffer | undefined> = holders.map(() => undefined);
    const views: Array<[Buffer, Buffer]> = []; // [view handed out, its bytes then]
    let maxHeldOverLive = 0;
    for (let step = 0; step < 20_000; step++) {
      const i = r.int(holders.length);
      const op = r.next();
      if (op < 0.7) {
        // Mostly small records; now and then one bigger than a slab share.
        const len = r.chance(0.01) ? 64 * 1024 + r.int(200 * 1024) : 1 + r.int(2_000);
        const rec = recordOf(r, i, step, len);
        if (r.chance(0.5)) {
          arena.copyIn(holders[i], rec);
        } else {
          arena.reserve(holders[i], len);
          rec.copy(holders[i].slab!.bytes, holders[i].off);
        }
        model[i] = rec;
      } else if (op < 0.85) {
        arena.release(holders[i]);
        model[i] = undefined;
      } else {
        const v = recordView(holders[i]);
        if (v !== undefined && views.length < 2_000) views.push([v, Buffer.from(v)]);
      }
      if (step % 97 === 0 || step > 19_900) {
        let live = 0;
        for (let j = 0; j < holders.length; j++) {
          const want = model[j];
          const got = recordView(holders[j]);
          if (want === undefined) expect(got, `${seedNote} holder ${j} at step ${step}`).toBeUndefined();
          else expect(got?.equals(want), `${seedNote} holder ${j} at step ${step}`).toBe(true);
          live += want?.length ?? 0;
        }
        expect(arena.live, seedNote).toBe(live);
        // Sparse slabs are evacuated: holes never outweigh what is live (plus the slab being filled).
        if (live > 0) maxHeldOverLive = Math.max(maxHeldOverLive, (arena.held - MAX_SLAB_BYTES) / live);
        expect(arena.held, seedNote).toBeLessThanOrEqual(2 * live + 2 * MAX_SLAB_BYTES);
      }
    }
    for (const [v, then] of views) expect(v.equals(then), seedNote).toBe(true);
    expect(maxHeldOverLive, seedNote).toBeLessThan(2);
    expect(arena.evacuated, seedNote).toBeGreaterThan(10);
  });

  it('packs records written once with no holes, and a store of a few keys stays small', () => {
    const arena = new RecordArena();
    const hs = Array.from({ length: 10 }, holder);
    for (const h of hs) arena.copyIn(h, Buffer.alloc(300, 1));
    expect(arena.live).toBe(3_000);
    expect(arena.held).toBe(64 * 1024);
    const many = Array.from({ length: 20_000 }, holder);
    for (const h of many) arena.copyIn(h, Buffer.alloc(300, 2));
    // Slabs of 64 KiB, 128 KiB, ... 1 MiB: the unfilled rest of the last one is all that is not live.
    expect(arena.held - arena.live).toBeLessThan(MAX_SLAB_BYTES);
  });

  it('evacuates a slab once its holes are more than half of it, and forgets an emptied one', () => {
    const arena = new RecordArena();
    const hs = Array.from({ length: 300 }, holder);
    for (const h of hs) arena.copyIn(h, Buffer.alloc(1_000, 7)); // 64 KiB, then 128 KiB, then 256 KiB slabs
    const first = hs[0].slab!;
    const inFirst = hs.filter((h) => h.slab === first);
    expect(inFirst.length).toBe(65);
    const heldBefore = arena.held;
    // Delete just over half of the first slab: its survivors move to the slab being filled.
    for (const h of inFirst.slice(0, 33)) arena.release(h);
    for (const h of inFirst.slice(33)) {
      expect(h.slab).not.toBe(first);
      expect(recordView(h)?.equals(Buffer.alloc(1_000, 7))).toBe(true);
    }
    expect(arena.held).toBe(heldBefore - 64 * 1024);
    expect(arena.evacuated).toBe(1);
    expect(arena.live).toBe((300 - 33) * 1_000);
  });

  it('gives a big record a slab of its own, released whole', () => {
    const arena = new RecordArena();
    const h = holder();
    arena.copyIn(h, Buffer.alloc(100_000, 3));
    expect(arena.held).toBe(100_000);
    const v = recordView(h)!;
    arena.release(h);
    expect(arena.held).toBe(0);
    expect(recordView(h)).toBeUndefined();
    expect(v.equals(Buffer.alloc(100_000, 3))).toBe(true); // a view outlives its record
  });
});
