import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Wal, WalCorruptError, WalEntry } from '../../src/wal/wal';
import { tempDir } from '../support/tmp';

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));
function dir(): string {
  const t = tempDir('wal');
  cleanups.push(t.cleanup);
  return t.path;
}
const entry = (index: number, term = 1, data = `e${index}`): WalEntry => ({ index, term, type: 0, data: Buffer.from(data) });
const segments = (d: string): string[] => readdirSync(d).filter((n) => n.endsWith('.wal')).sort();

describe('wal', () => {
  it('replays entries, the newest hard state and metadata after a reopen', async () => {
    const d = dir();
    const { wal } = await Wal.open(d);
    wal.appendMetadata(Buffer.from('ids'));
    wal.appendEntries([entry(1), entry(2), entry(3)]);
    wal.appendHardState({ term: 2, vote: 0xfedcba9876543210n, commit: 3 });
    await wal.sync();
    await wal.close();
    const { wal: again, contents } = await Wal.open(d);
    await again.close();
    expect(contents.metadata?.toString()).toBe('ids');
    expect(contents.entries.map((e) => e.data.toString())).toEqual(['e1', 'e2', 'e3']);
    expect(contents.hardState).toEqual({ term: 2, vote: 0xfedcba9876543210n, commit: 3 });
    expect(contents.repairedTail).toBeUndefined();
  });

  it('every segment starts with the metadata, snapshot mark and hard state in force, so releasing old segments loses none of them', async () => {
    const d = dir();
    const { wal } = await Wal.open(d, { segmentBytes: 4096 });
    wal.appendMetadata(Buffer.from('member-ids'));
    wal.appendHardState({ term: 2, vote: 7n, commit: 0 });
    await wal.sync();
    let index = 0;
    const fill = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        index++;
        wal.appendEntries([entry(index, 2, `e${index}`.padEnd(200, '.'))]);
        if (index % 10 === 0) wal.appendHardState({ term: 2, vote: 7n, commit: index });
        await wal.sync();
      }
    };
    await fill(60);
    wal.appendSnapshotMark({ index: 50, term: 2, extra: Buffer.from('snap-50') });
    await fill(60);
    await wal.sync();
    await wal.releaseTo(100); // drops every segment holding only entries up to 100
    expect(segments(d).length).toBeGreaterThan(0);
    await wal.close();
    const { wal: again, contents } = await Wal.open(d, { segmentBytes: 4096 });
    await again.close();
    expect(contents.metadata?.toString()).toBe('member-ids');
    expect(contents.snapshot).toMatchObject({ index: 50, term: 2 });
    expect(contents.snapshot?.extra.toString()).toBe('snap-50');
    expect(contents.hardState).toEqual({ term: 2, vote: 7n, commit: 120 });
    expect(contents.entries[contents.entries.length - 1].index).toBe(120);
    // A reopened WAL carries the state into the segments it starts later, too.
    const { wal: third } = await Wal.open(d, { segmentBytes: 4096 });
    for (let i = 0; i < 60; i++) {
      index++;
      third.appendEntries([entry(index, 2, `e${index}`.padEnd(200, '.'))]);
      await third.sync();
    }
    await third.releaseTo(170);
    await third.close();
    const { wal: fourth, contents: last } = await Wal.open(d, { segmentBytes: 4096 });
    await fourth.close();
    expect(last.metadata?.toString()).toBe('member-ids');
    expect(last.hardState).toEqual({ term: 2, vote: 7n, commit: 120 });
    expect(last.snapshot?.index).toBe(50);
  });

  it('a rewritten index replaces it and every later entry (raft log truncation)', async () => {
    const d = dir();
    const { wal } = await Wal.open(d);
    wal.appendEntries([entry(1), entry(2), entry(3)]);
    wal.appendEntries([entry(2, 2, 'new2')]);
    await wal.sync();
    await wal.close();
    const { wal: again, contents } = await Wal.open(d);
    await again.close();
    expect(contents.entries.map((e) => `${e.index}:${e.term}:${e.data}`)).toEqual(['1:1:e1', '2:2:new2']);
  });

  it('concurrent writers share fdatasyncs (group commit)', async () => {
    const { wal } = await Wal.open(dir());
    const syncs: Promise<void>[] = [];
    for (let i = 1; i <= 200; i++) {
      wal.appendEntries([entry(i)]);
      syncs.push(wal.sync());
    }
    await Promise.all(syncs);
    expect(wal.fsyncCount).toBeLessThan(10);
    await wal.close();
  });

  it('resolves syncs in order while fdatasyncs overlap, across segment rotations, and replays every entry', async () => {
    const d = dir();
    // Small segments: batches that need a new segment take the rotation path between pipelined ones.
    const { wal } = await Wal.open(d, { segmentBytes: 4096, syncsInFlight: 2 });
    const resolved: number[] = [];
    const syncs: Promise<void>[] = [];
    for (let i = 1; i <= 300; i++) {
      wal.appendEntries([entry(i, 1, `value-${i}-${'x'.repeat(i % 97)}`)]);
      if (i % 7 === 0 || i === 300) {
        const n = i;
        syncs.push(wal.sync().then(() => void resolved.push(n)));
      }
      // Let some batches start their fdatasync before the next entries arrive.
      if (i % 20 === 0) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(syncs);
    expect(resolved).toEqual([...resolved].sort((a, b) => a - b));
    await wal.close();
    expect(segments(d).length).toBeGreaterThan(3);
    const { wal: again, contents } = await Wal.open(d, { segmentBytes: 4096 });
    await again.close();
    expect(contents.entries.map((e) => e.index)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(contents.entries[122].data.toString()).toBe(`value-123-${'x'.repeat(123 % 97)}`);
  });

  it('cuts a torn tail at start-up and keeps appending after it', async () => {
    const d = dir();
    const { wal } = await Wal.open(d);
    wal.appendEntries([entry(1), entry(2)]);
    await wal.sync();
    await wal.close();
    const file = join(d, segments(d)[0]);
    const bytes = readFileSync(file);
    // Simulate a crash in the middle of writing entry 3: half a record after entry 2.
    let end = 16;
    while (bytes.readUInt32LE(end) !== 0) end += 9 + bytes.readUInt32LE(end);
    const half = Buffer.from([20, 0, 0, 0, 1, 2, 3, 4, 2, 0, 0]);
    half.copy(bytes, end);
    writeFileSync(file, bytes);
    const reopened = await Wal.open(d);
    expect(reopened.contents.repairedTail).toEqual({ file, offset: end });
    expect(reopened.contents.entries.map((e) => e.index)).toEqual([1, 2]);
    reopened.wal.appendEntries([entry(3)]);
    await reopened.wal.sync();
    await reopened.wal.close();
    const again = await Wal.open(d);
    expect(again.contents.repairedTail).toBeUndefined();
    expect(again.contents.entries.map((e) => e.index)).toEqual([1, 2, 3]);
    await again.wal.close();
  });

  it('refuses to start on a corrupt record in the middle, naming the file and offset', async () => {
    const d = dir();
    const { wal } = await Wal.open(d);
    wal.appendEntries([entry(1), entry(2), entry(3)]);
    await wal.sync();
    await wal.close();
    const file = join(d, segments(d)[0]);
    const bytes = readFileSync(file);
    bytes[16 + 9 + 10] ^= 0xff; // a payload byte of entry 1
    writeFileSync(file, bytes);
    await expect(Wal.open(d)).rejects.toThrow(WalCorruptError);
    await expect(Wal.open(d)).rejects.toThrow(`corrupt record in ${file} at offset 16`);
  });

  it('rotates segments and releases those below a durable index', async () => {
    const d = dir();
    const { wal } = await Wal.open(d, { segmentBytes: 4096, syncsInFlight: 2 });
    for (let i = 1; i <= 100; i++) wal.appendEntries([entry(i, 1, 'x'.repeat(100))]);
    await wal.sync();
    expect(segments(d).length).toBeGreaterThan(2);
    await wal.releaseTo(60);
    const left = segments(d);
    const firstIndex = parseInt(left[0].slice(17, 33), 16);
    expect(firstIndex).toBeLessThanOrEqual(61);
    await wal.close();
    const { wal: again, contents } = await Wal.open(d, { segmentBytes: 4096 });
    await again.close();
    expect(contents.entries[0].index).toBeLessThanOrEqual(61);
    expect(contents.entries[contents.entries.length - 1].index).toBe(100);
  });
});
