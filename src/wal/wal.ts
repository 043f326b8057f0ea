import { writevSync } from 'node:fs';
import { FileHandle, mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  RECORD_HEADER_BYTES,
  RECORD_TYPE_OFFSET,
  RecordType,
  SEGMENT_HEADER_BYTES,
  allZero,
  checkSegmentHeader,
  frameEntry,
  frameRecord,
  parseRecord,
  readU64,
  segmentHeader,
  writeU64,
} from './record';

// The durable log: segment files of framed records (see record.ts), appended in order and
// made durable by fdatasync. Appends are buffered in memory; sync() writes everything
// appended so far and fdatasyncs it, and appends made while fdatasyncs run gather for the
// next one, so concurrent writers share fsyncs (group commit).
//
// The write itself is a synchronous writev into the page cache on the calling thread (tens
// of microseconds, no thread-pool round trip). Up to `syncsInFlight` fdatasyncs may run at
// once (default 1, stop-and-wait; see SYNCS_IN_FLIGHT_DEFAULT): with more, a batch that
// arrives while one fdatasync runs is written and starts its own at once. An
// fdatasync covers every byte written before it started, so when one returns, every batch
// issued up to it is durable; waiters are resolved in batch order.
//
// Segments are named <seq>-<first index>.wal in hex and preallocated to SEGMENT_BYTES by
// writing zeros (node has no fallocate): an fdatasync then flushes data only, never block
// allocations, so it does not wait for the filesystem journal (and whatever LevelDB put in
// it). The next segment is prepared in the background while the current one fills.

export interface WalEntry {
  term: number;
  index: number;
  type: number;
  data: Buffer;
}

export interface WalHardState {
  term: number;
  vote: bigint;
  commit: number;
}

export interface WalSnapshotMark {
  index: number;
  term: number;
  /** Whatever the server needs with it (cairn: the encoded Raft snapshot metadata). */
  extra?: Buffer;
}

export interface WalContents {
  metadata: Buffer | undefined;
  hardState: WalHardState | undefined;
  snapshot: WalSnapshotMark | undefined;
  /** Entries after the snapshot, in index order, later writes having replaced earlier ones. */
  entries: WalEntry[];
  /** Set when a torn tail was cut off at open. */
  repairedTail: { file: string; offset: number } | undefined;
}

export interface WalOptions {
  segmentBytes?: number;
  /** fdatasyncs allowed in flight at once (default SYNCS_IN_FLIGHT_DEFAULT). */
  syncsInFlight?: number;
}

export const SEGMENT_BYTES_DEFAULT = 16 * 1024 * 1024;
const SPARE_NAME = 'spare.wal.tmp';
/**
 * fdatasyncs in flight at once, by default. 1 is stop-and-wait group commit. 2 overlaps a
 * batch's fdatasync with the next batch's: on this machine's shared virtual disk that halved
 * the entries per fdatasync without shortening the wait, and put throughput did not change
 * beyond the noise (bench/README.md), so the default stays 1.
 */
export const SYNCS_IN_FLIGHT_DEFAULT = 1;
const ZERO_CHUNK_BYTES = 1024 * 1024;

export class WalCorruptError extends Error {
  constructor(readonly file: string, readonly offset: number, reason: string) {
    super(`wal: corrupt record in ${file} at offset ${offset}: ${reason}; refusing to start (the log cannot be trusted past this point)`);
  }
}

interface Segment {
  name: string;
  seq: number;
  firstIndex: number;
}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Waiters of one written batch, resolved when an fdatasync issued after its write returns. */
interface IssuedBatch {
  waiters: Waiter[];
}

export class Wal {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private waiters: Waiter[] = [];
  /** Batches written and being fdatasynced, oldest first. */
  private issued: IssuedBatch[] = [];
  private syncsInFlight = 0;
  /** A rotation (or a record larger than what is left of the segment) is being written: no other writes meanwhile. */
  private rotating = false;
  private drained: Array<() => void> = [];
  private failed: Error | undefined;
  private lastIndex = 0;
  /** Highest entry index in each closed segment, to know which can be released. */
  private closedLastIndex = new Map<string, number>();
  fsyncCount = 0;
  private spare: Promise<void> | undefined;
  /**
   * The newest metadata, snapshot mark and hard state records written so far: each new
   * segment starts with them (as etcd's WAL cut does), so releasing old segments never
   * takes the member's identity or Raft state with it.
   */
  private carried: { metadata?: Buffer; snapshot?: Buffer; hardState?: Buffer } = {};
  onFsync: ((seconds: number) => void) | undefined;

  private constructor(
    readonly dir: string,
    private segments: Segment[],
    private file: FileHandle,
    private offset: number,
    private readonly segmentBytes: number,
    private readonly maxSyncsInFlight: number,
  ) {}

  /** Opens (or creates) the WAL in `dir`, replaying its contents and cutting a torn tail. */
  static async open(dir: string, opts: WalOptions = {}): Promise<{ wal: Wal; contents: WalContents }> {
    const segmentBytes = opts.segmentBytes ?? SEGMENT_BYTES_DEFAULT;
    await mkdir(dir, { recursive: true });
    await rm(join(dir, SPARE_NAME), { force: true });
    const segments = (await readdir(dir))
      .filter((n) => /^[0-9a-f]{16}-[0-9a-f]{16}\.wal$/.test(n))
      .map((name) => ({ name, seq: parseInt(name.slice(0, 16), 16), firstIndex: parseInt(name.slice(17, 33), 16) }))
      .sort((a, b) => a.seq - b.seq);
    const contents: WalContents = { metadata: undefined, hardState: undefined, snapshot: undefined, entries: [], repairedTail: undefined };
    const lastIndexes = new Map<string, number>();
    let tailOffset = SEGMENT_HEADER_BYTES;
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const isLast = i === segments.length - 1;
      const path = join(dir, seg.name);
      const bytes = await readFile(path);
      const headerProblem = checkSegmentHeader(bytes);
      if (headerProblem !== undefined) {
        if (isLast && allZero(bytes, 0, bytes.length)) {
          // Created but never written: a crash right after rotation.
          tailOffset = -1;
          break;
        }
        throw new WalCorruptError(path, 0, headerProblem);
      }
      let offset = SEGMENT_HEADER_BYTES;
      for (;;) {
        const out = parseRecord(bytes, offset);
        if (out.kind === 'end') break;
        if (out.kind === 'bad') {
          const tornTail = isLast && allZero(bytes, Math.min(out.claimedEnd, bytes.length), bytes.length);
          if (!tornTail) throw new WalCorruptError(path, out.offset, out.reason);
          contents.repairedTail = { file: path, offset: out.offset };
          break;
        }
        applyRecord(contents, out.record.type, out.record.payload, path, out.record.offset);
        offset = out.record.end;
      }
      lastIndexes.set(seg.name, contents.entries.length ? contents.entries[contents.entries.length - 1].index : 0);
      if (isLast) tailOffset = offset;
    }
    let file: FileHandle;
    let offset: number;
    if (segments.length === 0 || tailOffset === -1) {
      // A fresh WAL, or one whose newest segment was created but never written: (re)create it.
      const seq = segments.length === 0 ? 0 : segments[segments.length - 1].seq;
      if (tailOffset === -1) await rm(join(dir, segments.pop()!.name));
      const first = (contents.entries.length ? contents.entries[contents.entries.length - 1].index : contents.snapshot?.index ?? 0) + 1;
      const seg = { name: segmentName(seq, first), seq, firstIndex: first };
      ({ file, offset } = await createSegment(dir, seg.name, segmentBytes));
      segments.push(seg);
    } else {
      const last = segments[segments.length - 1];
      file = await open(join(dir, last.name), 'r+');
      offset = tailOffset;
      if (contents.repairedTail) {
        // Zero the torn bytes so the next start sees a clean end.
        const size = (await file.stat()).size;
        await file.write(Buffer.alloc(Math.min(size - offset, 1024 * 1024)), 0, Math.min(size - offset, 1024 * 1024), offset);
        await file.datasync();
      }
    }
    const wal = new Wal(dir, segments, file, offset, segmentBytes, Math.max(1, opts.syncsInFlight ?? SYNCS_IN_FLIGHT_DEFAULT));
    wal.prepareSpare();
    if (contents.metadata) wal.carried.metadata = frameRecord(RecordType.Metadata, contents.metadata);
    if (contents.snapshot) wal.carried.snapshot = snapshotFrame(contents.snapshot);
    if (contents.hardState) wal.carried.hardState = hardStateFrame(contents.hardState);
    wal.lastIndex = contents.entries.length ? contents.entries[contents.entries.length - 1].index : contents.snapshot?.index ?? 0;
    for (const s of segments.slice(0, -1)) wal.closedLastIndex.set(s.name, lastIndexes.get(s.name) ?? 0);
    return { wal, contents };
  }

  /** Appends entries (a WalEntry, or a Raft entry as it is: the same fields), one record each. */
  appendEntries(entries: readonly { term: number; index: number; type: number; data: Uint8Array }[]): void {
    for (const e of entries) {
      this.push(frameEntry(e.term, e.index, e.type, e.data));
      this.lastIndex = e.index;
    }
  }

  appendHardState(hs: WalHardState): void {
    this.push(hardStateFrame(hs));
  }

  appendMetadata(metadata: Buffer): void {
    this.push(frameRecord(RecordType.Metadata, metadata));
  }

  appendSnapshotMark(mark: WalSnapshotMark): void {
    this.push(snapshotFrame(mark));
  }

  /** Resolves when everything appended before the call is on disk (fdatasync). */
  sync(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.flush();
    });
  }

  /** Deletes closed segments holding only entries at or below `index` (already in a durable snapshot). */
  async releaseTo(index: number): Promise<void> {
    while (this.segments.length > 1) {
      const s = this.segments[0];
      const last = this.closedLastIndex.get(s.name);
      if (last === undefined || last > index) break;
      this.segments.shift();
      this.closedLastIndex.delete(s.name);
      await rm(join(this.dir, s.name), { force: true });
    }
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  async close(): Promise<void> {
    if (!this.failed && (this.pending.length > 0 || this.syncsInFlight > 0 || this.rotating)) await this.sync();
    await this.spare?.catch(() => undefined);
    await this.file.close();
  }

  private push(frame: Buffer): void {
    this.pending.push(frame);
    this.pendingBytes += frame.length;
  }

  /** Writes what is pending and starts its fdatasync, unless the pipeline is full (then the next completion does). */
  private flush(): void {
    while (this.waiters.length > 0 && !this.failed && !this.rotating && this.syncsInFlight < this.maxSyncsInFlight) {
      const frames = this.pending;
      const bytes = this.pendingBytes;
      const waiters = this.waiters;
      this.pending = [];
      this.pendingBytes = 0;
      this.waiters = [];
      if (this.offset + bytes > this.segmentBytes) {
        // The batch needs a new segment: the slow path, alone, after the fdatasyncs in flight.
        this.rotating = true;
        void this.writeRotating(frames, waiters);
        return;
      }
      if (frames.length > 0) {
        try {
          // Into the page cache, on this thread: the bytes are in place before the fdatasync starts.
          const written = writevSync(this.file.fd, frames, this.offset);
          if (written !== bytes) throw new Error(`wal: short write (${written} of ${bytes} bytes)`);
          this.carry(frames, 0, frames.length);
        } catch (e) {
          this.fail(e, waiters);
          return;
        }
        this.offset += bytes;
      }
      const batch: IssuedBatch = { waiters };
      this.issued.push(batch);
      this.syncsInFlight++;
      const started = process.hrtime.bigint();
      this.file.datasync().then(
        () => {
          this.syncsInFlight--;
          this.fsyncCount++;
          this.onFsync?.(Number(process.hrtime.bigint() - started) / 1e9);
          // Everything written before this fdatasync started is durable: this batch and all older ones.
          const upTo = this.issued.indexOf(batch);
          if (upTo >= 0) {
            const done = this.issued.splice(0, upTo + 1);
            for (const b of done) for (const w of b.waiters) w.resolve();
          }
          if (this.syncsInFlight === 0) this.wakeDrained();
          this.flush();
        },
        (e) => {
          this.syncsInFlight--;
          this.fail(e, []);
        },
      );
    }
  }

  private async writeRotating(frames: Buffer[], waiters: Waiter[]): Promise<void> {
    try {
      if (this.syncsInFlight > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
      if (this.failed) throw this.failed;
      await this.writeFrames(frames);
      const started = process.hrtime.bigint();
      await this.file.datasync();
      this.fsyncCount++;
      this.onFsync?.(Number(process.hrtime.bigint() - started) / 1e9);
      for (const w of waiters) w.resolve();
    } catch (e) {
      this.fail(e, waiters);
      return;
    } finally {
      this.rotating = false;
    }
    this.flush();
  }

  private wakeDrained(): void {
    const d = this.drained;
    this.drained = [];
    for (const resolve of d) resolve();
  }

  /** A write or fdatasync failed: the log cannot be trusted any more; every waiter fails. */
  private fail(e: unknown, waiters: Waiter[]): void {
    if (!this.failed) this.failed = e instanceof Error ? e : new Error(String(e));
    const err = this.failed;
    for (const w of waiters) w.reject(err);
    for (const b of this.issued) for (const w of b.waiters) w.reject(err);
    this.issued = [];
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
    this.wakeDrained();
  }

  private async writeFrames(frames: Buffer[]): Promise<void> {
    let i = 0;
    while (i < frames.length) {
      // Fill the current segment; rotate when the next frame does not fit.
      let bytes = 0;
      let j = i;
      while (j < frames.length && this.offset + bytes + frames[j].length <= this.segmentBytes) {
        bytes += frames[j].length;
        j++;
      }
      if (j === i) {
        if (this.offset > SEGMENT_HEADER_BYTES) {
          await this.rotate(firstEntryIndex(frames[i]) ?? this.lastIndex + 1);
          continue;
        }
        j = i + 1; // a record larger than a segment gets a segment of its own, grown past the size
      }
      const chunk = j - i === 1 ? frames[i] : Buffer.concat(frames.slice(i, j));
      await this.file.write(chunk, 0, chunk.length, this.offset);
      this.offset += chunk.length;
      this.carry(frames, i, j);
      i = j;
    }
  }

  private async rotate(firstIndex: number): Promise<void> {
    await this.file.datasync();
    await this.file.close();
    const prev = this.segments[this.segments.length - 1];
    this.closedLastIndex.set(prev.name, firstIndex - 1);
    const seg = { name: segmentName(prev.seq + 1, firstIndex), seq: prev.seq + 1, firstIndex };
    let ready = false;
    try {
      await this.spare;
      ready = this.spare !== undefined;
    } catch {
      ready = false; // preparing the spare failed: create the segment directly
    }
    if (ready) ({ file: this.file, offset: this.offset } = await installSegment(this.dir, join(this.dir, SPARE_NAME), seg.name));
    else ({ file: this.file, offset: this.offset } = await createSegment(this.dir, seg.name, this.segmentBytes));
    this.segments.push(seg);
    this.prepareSpare();
    // The state in force first; made durable by the fdatasync that follows the batch.
    const head = [this.carried.metadata, this.carried.snapshot, this.carried.hardState].filter((f): f is Buffer => f !== undefined);
    if (head.length > 0) {
      const b = Buffer.concat(head);
      await this.file.write(b, 0, b.length, this.offset);
      this.offset += b.length;
    }
  }

  /** Remembers the newest state records among frames[from, to), which were just written. */
  private carry(frames: Buffer[], from: number, to: number): void {
    for (let i = from; i < to; i++) {
      const f = frames[i];
      const type = f[RECORD_TYPE_OFFSET];
      if (type === RecordType.Entry) continue;
      if (type === RecordType.HardState) this.carried.hardState = f;
      else if (type === RecordType.Metadata) this.carried.metadata = f;
      else if (type === RecordType.Snapshot) this.carried.snapshot = f;
    }
  }

  /** Zero-fills the next segment in the background, so rotation is a rename. */
  private prepareSpare(): void {
    const p = writeZeroedFile(join(this.dir, SPARE_NAME), this.segmentBytes);
    p.catch(() => undefined);
    this.spare = p;
  }
}

function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}

async function createSegment(dir: string, name: string, size: number): Promise<{ file: FileHandle; offset: number }> {
  const tmp = join(dir, `${name}.tmp`);
  await writeZeroedFile(tmp, size);
  return installSegment(dir, tmp, name);
}

/** A file of `size` bytes: a segment header, then zeros, fsynced. */
async function writeZeroedFile(path: string, size: number): Promise<void> {
  const f = await open(path, 'w+');
  try {
    await f.write(segmentHeader(), 0, SEGMENT_HEADER_BYTES, 0);
    const zeros = Buffer.alloc(ZERO_CHUNK_BYTES);
    for (let o = SEGMENT_HEADER_BYTES; o < size; o += ZERO_CHUNK_BYTES) {
      await f.write(zeros, 0, Math.min(ZERO_CHUNK_BYTES, size - o), o);
    }
    await f.sync();
  } finally {
    await f.close();
  }
}

/** Renames a prepared file into place as segment `name` and makes the rename durable. */
async function installSegment(dir: string, from: string, name: string): Promise<{ file: FileHandle; offset: number }> {
  await rename(from, join(dir, name));
  const d = await open(dir, 'r');
  await d.sync();
  await d.close();
  return { file: await open(join(dir, name), 'r+'), offset: SEGMENT_HEADER_BYTES };
}

function firstEntryIndex(frame: Buffer): number | undefined {
  return frame[RECORD_TYPE_OFFSET] === RecordType.Entry ? readU64(frame, RECORD_HEADER_BYTES + 8) : undefined;
}

function hardStateFrame(hs: WalHardState): Buffer {
  const p = Buffer.allocUnsafe(24);
  writeU64(p, 0, hs.term);
  p.writeBigUInt64BE(hs.vote, 8);
  writeU64(p, 16, hs.commit);
  return frameRecord(RecordType.HardState, p);
}

function snapshotFrame(mark: WalSnapshotMark): Buffer {
  const extra = mark.extra ?? Buffer.alloc(0);
  const p = Buffer.allocUnsafe(16 + extra.length);
  writeU64(p, 0, mark.index);
  writeU64(p, 8, mark.term);
  extra.copy(p, 16);
  return frameRecord(RecordType.Snapshot, p);
}

function applyRecord(c: WalContents, type: RecordType, p: Buffer, file: string, offset: number): void {
  switch (type) {
    case RecordType.Metadata:
      c.metadata = Buffer.from(p);
      return;
    case RecordType.HardState:
      c.hardState = { term: readU64(p, 0), vote: p.readBigUInt64BE(8), commit: readU64(p, 16) };
      return;
    case RecordType.Snapshot: {
      const mark = { index: readU64(p, 0), term: readU64(p, 8), extra: Buffer.from(p.subarray(16)) };
      c.snapshot = mark;
      c.entries = c.entries.filter((e) => e.index > mark.index);
      return;
    }
    case RecordType.Entry: {
      const e: WalEntry = { term: readU64(p, 0), index: readU64(p, 8), type: p[16], data: Buffer.from(p.subarray(17)) };
      const entries = c.entries;
      if (entries.length > 0) {
        const first = entries[0].index;
        const last = entries[entries.length - 1].index;
        if (e.index <= last) {
          // A later write of an index replaces it and everything after it (raft log truncation).
          if (e.index < first) throw new WalCorruptError(file, offset, `entry ${e.index} precedes the log start ${first}`);
          entries.length = e.index - first;
        } else if (e.index !== last + 1) {
          throw new WalCorruptError(file, offset, `entry ${e.index} leaves a gap after ${last}`);
        }
      } else if (c.snapshot && e.index !== c.snapshot.index + 1 && e.index <= c.snapshot.index) {
        return; // already covered by the snapshot
      }
      entries.push(e);
      return;
    }
  }
}
