import { crc32 } from 'node:zlib';
import BTree from 'sorted-btree';
import { Backend } from './backend';
import {
  META_APPLIED_INDEX,
  META_COMPACT_FINISHED,
  META_COMPACT_SCHEDULED,
  REV_PREFIX,
  decodeRecord,
  checkRecordFields,
  decodeU64,
  encodeRecord,
  encodeRecordInto,
  encodeU64,
  isTombstoneRecord,
  parseRevKey,
  recordIndexKey,
  recordLease,
  recordSize,
  recordToKeyValue,
  revKey,
} from './codec';
import { KeyIndex, revisionId } from './key-index';
import { RecordArena, type RecordHolder, type Slab, recordView } from './record-arena';
import {
  EventType,
  KeyValue,
  RangeOptions,
  RangeResult,
  Revision,
  WatchEvent,
  assertRevision,
  errCompacted,
  errFutureRevision,
} from './types';

// The multi-version key space. The index of every key's revisions lives in memory (as in
// etcd), together with the newest value of each live key, so reads at the current revision
// and all of apply are synchronous. Older values are read from LevelDB.
//
// Memory per key is the point of the Entry layout (a million keys are a million of them):
// the current value is kept only as its record (the bytes stored in LevelDB), packed with
// the other records in the store's RecordArena (no object of its own on the V8 heap), and a
// KeyValue is built from it when read; a key with a single live revision since the
// last compaction (most keys of a configuration store) has no KeyIndex, only that revision's
// two numbers.
//
// Revisions follow etcd: a fresh store is at revision 1; each write transaction that changes
// something takes the next main revision, its changes numbered by sub revision.

/** Keys are ordered as bytes; latin1 maps each byte to one UTF-16 unit, keeping that order. */
export const indexKey = (key: Buffer): string => key.toString('latin1');

/** The tree's order: plain string comparison (sorted-btree's default checks types first, on every step of every lookup). */
const compareIndexKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

class Entry implements RecordHolder {
  /** Where the record of the key's current value is (the store's arena places it); undefined once deleted. */
  slab: Slab | undefined = undefined;
  off = 0;
  len = 0;
  /** The key's last revision (its current value's, or its tombstone's). */
  modMain: number;
  modSub: number;
  /** The key's history when it is more than the one live revision above. */
  history: KeyIndex | undefined = undefined;

  /** A key first written at `rev`; its record is placed by the caller. */
  constructor(rev: Revision) {
    this.modMain = rev.main;
    this.modSub = rev.sub;
  }

  /** True while the key exists (it has a record). */
  get live(): boolean {
    return this.slab !== undefined;
  }

  /** The record of the current value (a Buffer viewing the arena), or undefined when deleted. */
  record(): Buffer | undefined {
    return recordView(this);
  }

  /** The history, made explicit (before a change that a single revision cannot describe). */
  index(): KeyIndex {
    if (this.history === undefined) this.history = new KeyIndex({ main: this.modMain, sub: this.modSub });
    return this.history;
  }

  /** The revision of the key visible at store revision `rev`, or undefined. */
  revisionAt(rev: number): Revision | undefined {
    if (this.history !== undefined) return this.history.get(rev);
    return this.modMain <= rev ? { main: this.modMain, sub: this.modSub } : undefined;
  }

  /** The current key-value (a new object viewing the record), or undefined when deleted. */
  current(): KeyValue | undefined {
    const r = this.record();
    return r === undefined ? undefined : recordToKeyValue(r, this.modMain);
  }

  /** Records a put at `rev` in the history (the caller places the new record in the arena). */
  put(rev: Revision): void {
    this.index().put(rev);
    this.modMain = rev.main;
    this.modSub = rev.sub;
  }

  /** Records a delete at `rev` in the history (the caller releases the record from the arena). */
  tombstone(rev: Revision): void {
    this.index().tombstone(rev);
    this.modMain = rev.main;
    this.modSub = rev.sub;
  }

  /** See KeyIndex.compact; a history back to one live revision is dropped. */
  compact(rev: number, keep: Set<string>): boolean {
    if (this.history === undefined) {
      if (this.modMain <= rev) keep.add(revisionId(this.modMain, this.modSub));
      return false;
    }
    if (this.history.compact(rev, keep)) return true;
    if (this.history.isSingle()) this.history = undefined;
    return false;
  }
}

/**
 * The keys in memory: a B+tree for ordered scans and a Map beside it for lookups of one
 * key. Every put and delete of a key looks it up; over 100k keys a tree lookup was about 4 %
 * of a member's CPU in a 3-member put benchmark (cache misses down four levels of binary
 * search), the Map's about a tenth of that. The Map shares the tree's key strings: 25-36
 * MiB more RSS at 1M keys (bench --scale).
 */
class KeyTable {
  private readonly tree = new BTree<string, Entry>(undefined, compareIndexKeys);
  private readonly byKey = new Map<string, Entry>();

  get size(): number {
    return this.byKey.size;
  }

  get(k: string): Entry | undefined {
    return this.byKey.get(k);
  }

  set(k: string, e: Entry): void {
    this.tree.set(k, e);
    this.byKey.set(k, e);
  }

  delete(k: string): void {
    this.tree.delete(k);
    this.byKey.delete(k);
  }

  clear(): void {
    this.tree.clear();
    this.byKey.clear();
  }

  /** Entries in key order from `lo` on. */
  entries(lo: string): IterableIterator<[string, Entry]> {
    return this.tree.entries(lo);
  }

  /** Every entry, in key order. */
  forEachPair(visit: (k: string, e: Entry) => void): void {
    this.tree.forEachPair(visit);
  }
}

export interface StoreStats {
  keysTotal: number;
  dbSizeBytes: number;
  putsTotal: number;
  deletesTotal: number;
}

export class MvccStore {
  private readonly keys = new KeyTable();
  /** The records of the live keys' current values. */
  private readonly records = new RecordArena();
  private revision = 1;
  private compactRev = -1;
  private appliedIndex = 0;
  private sizeBytes = 0;
  private puts = 0;
  private deletes = 0;
  private physicalCompaction: Promise<void> = Promise.resolve();
  private readonly historicalReads = new Set<Promise<unknown>>();
  private readonly listeners: Array<(events: WatchEvent[], revision: number) => void> = [];

  private persistedAppliedIndex = 0;

  private constructor(readonly backend: Backend) {
    // The applied index goes into whichever batch is written next. Batches are taken between
    // turns of the event loop, and apply is synchronous within an entry, so a batch holds
    // whole entries and exactly the index of the last one: replay never applies twice.
    backend.flushHook = () => {
      if (this.appliedIndex === this.persistedAppliedIndex) return [];
      this.persistedAppliedIndex = this.appliedIndex;
      return [{ type: 'put', key: META_APPLIED_INDEX, value: encodeU64(this.appliedIndex) }];
    };
  }

  static async open(backend: Backend): Promise<MvccStore> {
    const store = new MvccStore(backend);
    await store.restore();
    return store;
  }

  get currentRevision(): number {
    return this.revision;
  }

  /** The revision below which history is gone (-1 before the first compaction). */
  get compactRevision(): number {
    return this.compactRev;
  }

  /** The last log index whose effects this store holds. */
  get consistentIndex(): number {
    return this.appliedIndex;
  }

  get dbSizeBytes(): number {
    return this.sizeBytes;
  }

  stats(): StoreStats {
    return { keysTotal: this.keys.size, dbSizeBytes: this.sizeBytes, putsTotal: this.puts, deletesTotal: this.deletes };
  }

  /** Visits every live key-value at the current revision, in key order. */
  forEachLive(visit: (kv: KeyValue) => void): void {
    this.keys.forEachPair((_k, e) => {
      const r = e.record();
      if (r !== undefined) visit(recordToKeyValue(r, e.modMain));
    });
  }

  /** Visits every live key that has a lease, with its lease (no KeyValue built: a restart at a million keys calls this). */
  forEachLeased(visit: (key: string, lease: bigint) => void): void {
    this.keys.forEachPair((k, e) => {
      const r = e.record();
      if (r === undefined) return;
      const lease = recordLease(r);
      if (lease !== 0n) visit(k, lease);
    });
  }

  /**
   * A hash of the key space's history up to `rev` (etcd's HashKV): every record above the
   * compaction point plus the ones compaction keeps. Members that applied the same log
   * agree on it.
   */
  async hashKV(rev: number): Promise<{ hash: number; revision: number; compactRevision: number }> {
    const at = this.resolveReadRevision(rev);
    const compactRev = this.compactRev;
    const revision = this.revision;
    const keep = new Set<string>();
    if (compactRev > 0) {
      this.keys.forEachPair((_k, e) => {
        const k = e.revisionAt(compactRev);
        if (k) keep.add(revisionId(k.main, k.sub));
      });
    }
    const read = (async () => {
      await this.backend.commit();
      let hash = 0;
      await this.backend.scan(Buffer.of(REV_PREFIX), revKey({ main: at + 1, sub: 0 }), (chunk) => {
        for (const [k, v] of chunk) {
          const r = parseRevKey(k);
          if (r.main <= compactRev && !keep.has(revisionId(r.main, r.sub))) continue;
          hash = crc32(k, hash);
          hash = crc32(v, hash);
        }
      });
      return hash;
    })();
    return { hash: await this.trackRead(read), revision, compactRevision: compactRev };
  }

  /** Registers a read of LevelDB history; compaction waits for it before deleting records. */
  trackRead<T>(read: Promise<T>): Promise<T> {
    this.historicalReads.add(read);
    const done = (): void => void this.historicalReads.delete(read);
    read.then(done, done);
    return read;
  }

  /** Called with the events of every write transaction, in revision order, as it is applied. */
  onEvents(listener: (events: WatchEvent[], revision: number) => void): void {
    this.listeners.push(listener);
  }

  /** Records that the log entry `index` has been applied; persisted with the batch holding its changes. */
  setConsistentIndex(index: number): void {
    if (index < this.appliedIndex) throw new Error(`mvcc: consistent index going back from ${this.appliedIndex} to ${index}`);
    this.appliedIndex = index;
  }

  /** Checks a read revision against the store's history; returns the revision to read at. */
  resolveReadRevision(rev: number | undefined): number {
    if (rev === undefined || rev <= 0) return this.revision;
    if (rev > this.revision) throw errFutureRevision();
    if (rev < this.compactRev) throw errCompacted();
    return rev;
  }

  /** Range at the current revision: synchronous, from memory. */
  rangeCurrent(key: Buffer, end: Buffer | undefined, opts: RangeOptions = {}): RangeResult {
    return this.rangeInMemory(key, end, this.revision, opts);
  }

  /** Internal: range at the read revision of the open write transaction (its own changes included). */
  rangeLatest(key: Buffer, end: Buffer | undefined, rev: number, opts: RangeOptions = {}): RangeResult {
    return this.rangeInMemory(key, end, rev, opts);
  }

  /** Range at any revision the store still has; reads LevelDB for values no longer current. */
  async range(key: Buffer, end: Buffer | undefined, opts: RangeOptions = {}): Promise<RangeResult> {
    const rev = this.resolveReadRevision(opts.revision);
    if (rev === this.revision) return this.rangeInMemory(key, end, rev, opts);
    const read = this.rangeHistorical(key, end, rev, opts);
    this.historicalReads.add(read);
    try {
      return await read;
    } finally {
      this.historicalReads.delete(read);
    }
  }

  private rangeInMemory(key: Buffer, end: Buffer | undefined, rev: number, opts: RangeOptions): RangeResult {
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const kvs: KeyValue[] = [];
    let count = 0;
    const countOnly = opts.countOnly === true;
    this.forEachInRange(key, end, (e) => {
      if (rev >= e.modMain) {
        if (!e.live) return; // deleted at or before rev
        count++;
        if (!countOnly && kvs.length < limit) kvs.push(recordToKeyValue(e.record()!, e.modMain));
        return;
      }
      if (e.revisionAt(rev) !== undefined) throw new Error('mvcc: in-memory range below the current revision');
    });
    return { kvs, count, revision: rev };
  }

  private async rangeHistorical(key: Buffer, end: Buffer | undefined, rev: number, opts: RangeOptions): Promise<RangeResult> {
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const slots: Array<KeyValue | Revision> = [];
    let count = 0;
    this.forEachInRange(key, end, (e) => {
      const at = e.revisionAt(rev);
      if (at === undefined) return;
      count++;
      if (opts.countOnly || slots.length >= limit) return;
      const isCurrent = e.live && at.main === e.modMain && at.sub === e.modSub;
      slots.push(isCurrent ? recordToKeyValue(e.record()!, e.modMain) : at);
    });
    const missing: Revision[] = [];
    for (const s of slots) if (!isKeyValue(s)) missing.push(s);
    if (missing.length > 0) {
      await this.backend.commit(); // everything applied so far must be readable from LevelDB
      const values = await this.backend.getMany(missing.map(revKey));
      let m = 0;
      for (let i = 0; i < slots.length; i++) {
        const s = slots[i];
        if (isKeyValue(s)) continue;
        const raw = values[m++];
        if (raw === undefined) throw new Error(`mvcc: revision ${s.main}.${s.sub} missing from storage`);
        slots[i] = decodeRecord(s, raw).kv;
      }
    }
    // As in etcd, the result carries the store's current revision, not the one read at.
    return { kvs: slots as KeyValue[], count, revision: this.revision };
  }

  private forEachInRange(key: Buffer, end: Buffer | undefined, visit: (e: Entry) => void): void {
    const lo = indexKey(key);
    if (end === undefined || end.length === 0) {
      const e = this.keys.get(lo);
      if (e !== undefined) visit(e);
      return;
    }
    // range_end "\0" means every key >= key (etcd's convention).
    const unbounded = end.length === 1 && end[0] === 0;
    const hi = unbounded ? undefined : indexKey(end);
    if (hi !== undefined && hi <= lo) return;
    for (const [k, e] of this.keys.entries(lo)) {
      if (hi !== undefined && k >= hi) break;
      visit(e);
    }
  }

  /** Starts a write transaction. Apply is single-threaded: one at a time, ended before the next. */
  write(): WriteTxn {
    return new WriteTxn(this, this.revision);
  }

  /** Internal: the index entry of a key (`k` = indexKey(key)), for WriteTxn. */
  entryAt(k: string): Entry | undefined {
    return this.keys.get(k);
  }

  /** Internal: records a put of a write transaction; `e` is entryAt(k). */
  applyPut(k: string, e: Entry | undefined, kv: KeyValue, rev: Revision): void {
    checkRecordFields(kv); // nothing changes when the record cannot be written
    const len = recordSize(kv);
    let entry = e;
    if (entry === undefined) {
      entry = new Entry(rev);
      this.keys.set(k, entry);
    } else {
      entry.put(rev);
    }
    // A live key's record stays in memory, in the arena: it holds neither the request's
    // buffers nor a shared pool slab. LevelDB's batch gets a view of the same bytes.
    this.records.reserve(entry, len);
    encodeRecordInto(entry.slab!.bytes, entry.off, kv, false);
    this.puts++;
    this.sizeBytes += len + 17;
    this.backend.put(revKey(rev), entry.record()!);
  }

  /** Internal: records a delete of a write transaction. */
  applyTombstone(tomb: KeyValue, rev: Revision): void {
    const e = this.keys.get(indexKey(tomb.key));
    if (e === undefined) throw new Error(`mvcc: delete of a key not in the index at ${rev.main}.${rev.sub}`);
    this.records.release(e);
    e.tombstone(rev);
    this.deletes++;
    const record = encodeRecord(tomb, true);
    this.sizeBytes += record.length + 17;
    this.backend.put(revKey(rev), record);
  }

  /** Internal: ends a write transaction. */
  finishWrite(rev: number, events: WatchEvent[]): void {
    if (events.length === 0) return;
    if (rev !== this.revision + 1) throw new Error(`mvcc: write at revision ${rev} after ${this.revision}`);
    this.revision = rev;
    for (const l of this.listeners) l(events, rev);
  }

  /**
   * Compacts history at `rev` (etcd's Compact): reads below it fail from now on. The index is
   * compacted at once; LevelDB records are deleted in the background. The returned promise
   * resolves when they are gone (what a `physical` compaction waits for).
   */
  compact(rev: number): { physical: Promise<void> } {
    if (rev <= this.compactRev) throw errCompacted(); // negative ones too, as etcd (and before the assert: apply must not throw)
    if (rev > this.revision) throw errFutureRevision();
    assertRevision(rev);
    this.compactRev = rev;
    this.backend.put(META_COMPACT_SCHEDULED, encodeU64(rev));
    const keep = this.compactIndex(rev);
    const reads = [...this.historicalReads];
    const previous = this.physicalCompaction;
    this.physicalCompaction = (async () => {
      await previous;
      await Promise.allSettled(reads);
      await this.deleteCompacted(rev, keep);
    })();
    return { physical: this.physicalCompaction };
  }

  private compactIndex(rev: number): Set<string> {
    const keep = new Set<string>();
    const emptied: string[] = [];
    this.keys.forEachPair((k, e) => {
      if (e.compact(rev, keep)) emptied.push(k);
    });
    for (const k of emptied) this.keys.delete(k);
    return keep;
  }

  private async deleteCompacted(rev: number, keep: Set<string>): Promise<void> {
    await this.backend.commit();
    await this.backend.scan(Buffer.of(REV_PREFIX), revKey({ main: rev + 1, sub: 0 }), async (chunk) => {
      for (const [k, v] of chunk) {
        const r = parseRevKey(k);
        // Records at the compaction revision itself stay, tombstones included: the index
        // forgets a key deleted there, but a watcher may start at that revision and must
        // see the delete. The next compaction removes them.
        if (r.main === rev || keep.has(revisionId(r.main, r.sub))) continue;
        this.backend.del(k);
        this.sizeBytes -= k.length + v.length;
      }
      await this.backend.commit();
    });
    this.backend.put(META_COMPACT_FINISHED, encodeU64(rev));
    await this.backend.commit();
  }

  /** Forgets everything in memory and reads the store back from LevelDB (after a snapshot replaced it). */
  async reload(): Promise<void> {
    await this.settle();
    this.keys.clear();
    this.records.clear();
    this.revision = 1;
    this.compactRev = -1;
    this.appliedIndex = 0;
    this.persistedAppliedIndex = 0;
    this.sizeBytes = 0;
    await this.restore();
  }

  /** Waits for background compaction work (tests and shutdown). */
  async settle(): Promise<void> {
    await this.physicalCompaction;
    await this.backend.commit();
  }

  private async restore(): Promise<void> {
    const db = this.backend.db;
    const applied = await db.get(META_APPLIED_INDEX);
    if (applied) this.appliedIndex = this.persistedAppliedIndex = decodeU64(applied);
    const scheduled = await db.get(META_COMPACT_SCHEDULED);
    const finished = await db.get(META_COMPACT_FINISHED);
    await this.backend.scan(Buffer.of(REV_PREFIX), Buffer.of(REV_PREFIX + 1), (chunk) => {
      for (const [k, v] of chunk) this.restoreRecord(k, v);
    });
    if (scheduled) {
      const rev = decodeU64(scheduled);
      if (rev > this.revision) this.revision = rev;
      this.compactRev = rev;
      const keep = this.compactIndex(rev);
      if (!finished || decodeU64(finished) < rev) await this.deleteCompacted(rev, keep);
    }
  }

  private restoreRecord(k: Buffer, v: Buffer): void {
    const rev = parseRevKey(k);
    const ik = recordIndexKey(rev, v);
    const e = this.keys.get(ik);
    // LevelDB hands each value back in an allocation of its own: a live one is copied into
    // the arena, and LevelDB's buffer dies young.
    if (isTombstoneRecord(v)) {
      // A tombstone of a key whose earlier revisions were compacted away says nothing new.
      if (e !== undefined && e.live) {
        this.records.release(e);
        e.tombstone(rev);
      }
    } else if (e === undefined) {
      const fresh = new Entry(rev);
      this.keys.set(ik, fresh);
      this.records.copyIn(fresh, v);
    } else {
      e.put(rev);
      this.records.copyIn(e, v);
    }
    if (rev.main > this.revision) this.revision = rev.main;
    this.sizeBytes += k.length + v.length;
  }
}

function isKeyValue(s: KeyValue | Revision): s is KeyValue {
  return (s as KeyValue).key !== undefined;
}

/**
 * One write transaction: its reads see its own earlier changes (as etcd's do), every change
 * takes the next sub revision of main revision beginRevision + 1, and nothing becomes a
 * revision until end(), which takes a revision only if something changed.
 */
export class WriteTxn {
  private readonly events: WatchEvent[] = [];
  private ended = false;

  constructor(private readonly store: MvccStore, readonly beginRevision: number) {}

  /** The revision reads inside this transaction see. */
  get readRevision(): number {
    return this.events.length > 0 ? this.beginRevision + 1 : this.beginRevision;
  }

  get changed(): boolean {
    return this.events.length > 0;
  }

  range(key: Buffer, end: Buffer | undefined, opts: RangeOptions = {}): RangeResult {
    this.assertOpen();
    // Reads at the current (or the txn's own) revision come from memory.
    return this.store.rangeLatest(key, end, this.readRevision, opts);
  }

  put(key: Buffer, value: Buffer, lease: bigint): KeyValue {
    this.assertOpen();
    const rev = this.beginRevision + 1;
    const k = indexKey(key);
    const e = this.store.entryAt(k);
    const prev = e?.current();
    const kv: KeyValue = {
      key,
      value,
      createRevision: prev ? prev.createRevision : rev,
      modRevision: rev,
      version: prev ? prev.version + 1 : 1,
      lease,
    };
    this.store.applyPut(k, e, kv, { main: rev, sub: this.events.length });
    this.events.push({ type: EventType.Put, kv, prevKv: prev });
    return kv;
  }

  /** Deletes every live key in [key, end); returns the deleted key-values. */
  deleteRange(key: Buffer, end: Buffer | undefined): KeyValue[] {
    this.assertOpen();
    const rev = this.beginRevision + 1;
    const { kvs } = this.store.rangeLatest(key, end, this.readRevision);
    for (const prev of kvs) {
      const tomb: KeyValue = { key: prev.key, value: EMPTY, createRevision: 0, modRevision: rev, version: 0, lease: 0n };
      this.store.applyTombstone(tomb, { main: rev, sub: this.events.length });
      this.events.push({ type: EventType.Delete, kv: tomb, prevKv: prev });
    }
    return kvs;
  }

  /** Ends the transaction; returns the revision it wrote (or the unchanged one). */
  end(): number {
    this.assertOpen();
    this.ended = true;
    const rev = this.readRevision;
    this.store.finishWrite(rev, this.events);
    return rev;
  }

  private assertOpen(): void {
    if (this.ended) throw new Error('mvcc: write transaction used after end()');
  }
}

const EMPTY = Buffer.alloc(0);
