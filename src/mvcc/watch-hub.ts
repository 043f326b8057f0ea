import { decodeRecord, parseRevKey, revKey } from './codec';
import { MvccStore, indexKey } from './store';
import { EventType, KeyValue, WatchEvent } from './types';

// Delivers the store's changes to watchers (etcd's watchableStore).
//
// A watcher is either synced — it has seen everything up to the current revision and gets
// each write transaction's events as they are applied — or unsynced: it starts in the past,
// or its stream could not take more. Unsynced watchers catch up from LevelDB in a background
// loop, reading whole revisions in bounded chunks, and become synced again once they reach
// the current revision. A slow stream therefore never holds up apply or other streams, and
// memory stays bounded: nothing is buffered for a watcher that is behind.
//
// Each response carries whole revisions: the events of one transaction are never split
// between deliveries.

export const enum WatchFilter {
  NoPut = 0,
  NoDelete = 1,
}

export interface WatchSink {
  /** Whether the stream can take a delivery now. */
  ready(): boolean;
  /** Delivers events (whole revisions, in order; `revision` is the header revision). */
  send(w: Watcher, events: WatchEvent[], revision: number): void;
  /** The watcher's start is below the compaction point; it is removed. */
  compacted(w: Watcher, compactRevision: number): void;
}

export interface WatcherOptions {
  key: Buffer;
  /** undefined: the single key; empty: every key >= key; otherwise [key, end). */
  end: Buffer | undefined;
  /** First revision to deliver; 0 means "after the current one". */
  startRevision: number;
  filters: readonly WatchFilter[];
  prevKv: boolean;
}

export class Watcher {
  /** The next revision this watcher has not seen. */
  minRev = 0;
  synced = false;
  removed = false;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  private readonly lo: string;
  private readonly hi: string | undefined;

  constructor(readonly opts: WatcherOptions, readonly sink: WatchSink, readonly id: number) {
    this.noPut = opts.filters.includes(WatchFilter.NoPut);
    this.noDelete = opts.filters.includes(WatchFilter.NoDelete);
    this.lo = indexKey(opts.key);
    this.hi = opts.end === undefined || opts.end.length === 0 ? undefined : indexKey(opts.end);
  }

  get isRange(): boolean {
    return this.opts.end !== undefined;
  }

  matches(k: string): boolean {
    if (!this.isRange) return k === this.lo;
    return k >= this.lo && (this.hi === undefined || k < this.hi);
  }

  /** The events this watcher wants out of `events`. */
  select(events: readonly WatchEvent[]): WatchEvent[] {
    const out: WatchEvent[] = [];
    for (const e of events) {
      if (e.kv.modRevision < this.minRev) continue;
      if (e.type === EventType.Put ? this.noPut : this.noDelete) continue;
      if (!this.matches(indexKey(e.kv.key))) continue;
      out.push(this.opts.prevKv || e.prevKv === undefined ? e : { type: e.type, kv: e.kv });
    }
    return out;
  }
}

/** Watchers brought up to date per catch-up round (etcd: 512). */
const SYNC_WATCHERS_MAX = 512;
/** Records read from LevelDB per catch-up round; a round always ends on a whole revision. */
const SYNC_RECORDS_MAX = 10_000;
const SYNC_INTERVAL_MS = 100;

export class WatchHub {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Set<Watcher>();
  private readonly unsynced = new Set<Watcher>();
  private syncing = false;
  private syncSoon = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly store: MvccStore) {
    store.onEvents((events, rev) => this.publish(events, rev));
    this.timer = setInterval(() => this.wake(), SYNC_INTERVAL_MS);
    this.timer.unref();
  }

  get watcherCount(): number {
    let n = this.ranges.size + this.unsynced.size;
    for (const s of this.byKey.values()) n += s.size;
    return n;
  }

  add(w: Watcher): void {
    const cur = this.store.currentRevision;
    const start = w.opts.startRevision;
    if (start <= 0 || start > cur) {
      w.minRev = Math.max(cur + 1, start);
      this.markSynced(w);
    } else {
      w.minRev = start;
      this.unsynced.add(w);
      this.wake();
    }
  }

  remove(w: Watcher): void {
    if (w.removed) return;
    w.removed = true;
    this.unindex(w);
    this.unsynced.delete(w);
  }

  /** Asks for a catch-up round soon (a stream drained, a watcher fell behind). */
  wake(): void {
    if (this.unsynced.size === 0) return;
    if (this.syncing) {
      this.syncSoon = true;
      return;
    }
    void this.syncRound();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The store was replaced underneath (a snapshot): every watcher catches up from storage. */
  resyncAll(): void {
    const all: Watcher[] = [...this.ranges];
    for (const set of this.byKey.values()) all.push(...set);
    for (const w of all) {
      this.unindex(w);
      this.unsynced.add(w);
    }
    this.wake();
  }

  private markSynced(w: Watcher): void {
    w.synced = true;
    if (w.isRange) this.ranges.add(w);
    else {
      const k = indexKey(w.opts.key);
      let set = this.byKey.get(k);
      if (set === undefined) this.byKey.set(k, (set = new Set()));
      set.add(w);
    }
  }

  private unindex(w: Watcher): void {
    if (!w.synced) return;
    w.synced = false;
    if (w.isRange) this.ranges.delete(w);
    else {
      const k = indexKey(w.opts.key);
      const set = this.byKey.get(k);
      set?.delete(w);
      if (set?.size === 0) this.byKey.delete(k);
    }
  }

  /** Live path: the events of one write transaction, as it is applied. */
  private publish(events: WatchEvent[], rev: number): void {
    if (this.byKey.size === 0 && this.ranges.size === 0) return;
    const targets = new Set<Watcher>();
    for (const e of events) {
      const set = this.byKey.get(indexKey(e.kv.key));
      if (set) for (const w of set) targets.add(w);
    }
    for (const w of this.ranges) targets.add(w);
    for (const w of targets) {
      if (w.minRev > rev) continue; // starts in the future
      if (!w.sink.ready()) {
        // The stream is backed up: stop pushing and let the catch-up loop resend from storage.
        this.unindex(w);
        w.minRev = rev;
        this.unsynced.add(w);
        continue;
      }
      const mine = w.select(events);
      w.minRev = rev + 1;
      if (mine.length > 0) w.sink.send(w, mine, rev);
    }
  }

  private async syncRound(): Promise<void> {
    this.syncing = true;
    try {
      do {
        this.syncSoon = false;
        await this.syncOnce();
      } while (this.syncSoon && this.unsynced.size > 0);
    } finally {
      this.syncing = false;
    }
  }

  private async syncOnce(): Promise<void> {
    const batch: Watcher[] = [];
    for (const w of this.unsynced) {
      if (batch.length >= SYNC_WATCHERS_MAX) break;
      if (this.dropIfCompacted(w)) continue;
      if (w.sink.ready()) batch.push(w);
    }
    if (batch.length === 0) return;
    const target = this.store.currentRevision;
    let from = Infinity;
    for (const w of batch) from = Math.min(from, w.minRev);
    let events: WatchEvent[] = [];
    let upTo = target;
    if (from <= target) {
      ({ events, upTo } = await this.store.trackRead(this.readHistory(from, target)));
    }
    for (const w of batch) {
      if (w.removed || this.dropIfCompacted(w)) continue;
      if (w.minRev > upTo) continue;
      const mine = w.select(events.filter((e) => e.kv.modRevision <= upTo));
      if (w.opts.prevKv) await this.fillPrevKvs(mine);
      // A compaction while the previous values were looked up would leave them missing:
      // the watcher is behind the compaction point now and gets the compacted response.
      if (w.removed || this.dropIfCompacted(w)) continue;
      w.minRev = upTo + 1;
      if (mine.length > 0) w.sink.send(w, mine, this.store.currentRevision);
      if (w.minRev > this.store.currentRevision) {
        this.unsynced.delete(w);
        this.markSynced(w);
      } else {
        this.syncSoon = true;
      }
    }
  }

  private dropIfCompacted(w: Watcher): boolean {
    const compactRev = this.store.compactRevision;
    if (w.minRev >= compactRev || w.synced) return false;
    this.remove(w);
    w.sink.compacted(w, compactRev);
    return true;
  }

  /** Reads revisions [from, to] from LevelDB, at most SYNC_RECORDS_MAX records, ending on a whole revision. */
  private async readHistory(from: number, to: number): Promise<{ events: WatchEvent[]; upTo: number }> {
    await this.store.backend.commit();
    const it = this.store.backend.db.iterator({ gte: revKey({ main: from, sub: 0 }), lt: revKey({ main: to + 1, sub: 0 }) });
    const events: WatchEvent[] = [];
    let upTo = to;
    try {
      for (;;) {
        const chunk = await it.nextv(1000);
        if (chunk.length === 0) break;
        let stop = false;
        for (const [k, v] of chunk) {
          const rev = parseRevKey(k);
          if (events.length >= SYNC_RECORDS_MAX && rev.main !== events[events.length - 1].kv.modRevision) {
            upTo = rev.main - 1;
            stop = true;
            break;
          }
          const { kv, tombstone } = decodeRecord(rev, v);
          events.push({ type: tombstone ? EventType.Delete : EventType.Put, kv });
        }
        if (stop) break;
      }
    } finally {
      await it.close();
    }
    return { events, upTo };
  }

  /** prev_kv for replayed events: the key as it was one revision before (etcd does the same
   *  lookup). An event at the compaction point itself has no previous value left to give. */
  private async fillPrevKvs(events: WatchEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      if (e.type === EventType.Put && e.kv.version === 1) continue;
      try {
        const r = await this.store.range(e.kv.key, undefined, { revision: e.kv.modRevision - 1 });
        const prev: KeyValue | undefined = r.kvs[0];
        if (prev) events[i] = { type: e.type, kv: e.kv, prevKv: prev };
      } catch {
        // compacted: no previous value to give
      }
    }
  }
}
