import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { etcdctl, startCairn } from '../../bench/lib/procs';

// A member's WAL after a crash: a torn write at the tail is cut off at restart (and every
// complete record kept); a corrupt record in the middle makes the member refuse to start,
// naming the file and the offset.

function walFile(dataDir: string): string {
  const dir = join(dataDir, 'member', 'wal');
  const segs = readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
  return join(dir, segs[segs.length - 1]);
}

/** Offsets of every record in a segment (16-byte header, then u32le length | u32le crc | u8 type | payload). */
function recordOffsets(bytes: Buffer): number[] {
  const out: number[] = [];
  let off = 16;
  while (off + 9 <= bytes.length && bytes.readUInt32LE(off) !== 0) {
    out.push(off);
    off += 9 + bytes.readUInt32LE(off);
  }
  out.push(off); // the end
  return out;
}

describe('WAL damage', () => {
  it('a torn tail is cut off at restart, and the member serves every complete write', async () => {
    const s = await startCairn({});
    for (let i = 0; i < 10; i++) expect((await etcdctl(s.endpoint, ['put', `w/${i}`, `v${i}`])).code).toBe(0);
    await s.stop();
    const file = walFile(s.dataDir);
    const bytes = readFileSync(file);
    const end = recordOffsets(bytes).at(-1)!;
    // Half a record where the next one would go: what a crash during a write leaves.
    Buffer.from([40, 0, 0, 0, 9, 9, 9, 9, 2, 1, 2, 3]).copy(bytes, end);
    writeFileSync(file, bytes);
    await s.restart();
    expect(s.output()).toContain('cut a torn write off the end of the WAL');
    const got = await etcdctl(s.endpoint, ['get', 'w/', '--prefix', '--keys-only']);
    expect(got.stdout.split('\n').filter((l) => l.trim()).length).toBe(10);
    expect((await etcdctl(s.endpoint, ['put', 'w/after', 'ok'])).code).toBe(0);
    await s.stop();
  });

  it('a corrupt record in the middle makes the member refuse to start, naming file and offset', async () => {
    const s = await startCairn({});
    for (let i = 0; i < 10; i++) expect((await etcdctl(s.endpoint, ['put', `m/${i}`, `v${i}`])).code).toBe(0);
    await s.stop();
    const file = walFile(s.dataDir);
    const bytes = readFileSync(file);
    const offsets = recordOffsets(bytes);
    const victim = offsets[Math.floor(offsets.length / 2)];
    bytes[victim + 9] ^= 0xff; // a payload byte: its crc no longer matches
    writeFileSync(file, bytes);
    await expect(s.restart()).rejects.toThrow(/exited before/);
    expect(s.output()).toContain(`corrupt record in ${file} at offset ${victim}`);
  });
});
