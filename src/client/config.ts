import { KeyValue } from './convert';
import { ClientClosedError, CompactedError } from './errors';
import { wireRange, type GetQuery, type GetResult } from './kv';
import type { CallOptions } from './pool';
import type { WatchBatch, WatchEvent, WatchOptions, Watcher } from './watch';

// A configuration watcher: a live, typed view of every key under a prefix.
//
//   initial read   Range of the prefix in pages of `pageSize` keys; the first page fixes
//                  the revision R, every later page is read AT R (Range.revision), so the
//                  view is the prefix exactly as it was at R, however big it is.
//   then watch     from R + 1. The events of one revision (one txn) are applied to the view
//                  together, and only then are listeners told: no listener, snapshot or
//                  iterator ever sees half a transaction.
//   reconnect      the client's watch resumes from the last revision it delivered + 1 on
//                  another member if needed (watch.ts): no gap, no duplicate.
//   compaction     if that revision was compacted while the watch was disconnected, the
//                  history in between is gone. The view then re-reads the whole prefix at a
//                  new revision H, and emits the difference between its old state and the
//                  state at H as ONE batch (`resync: true`, revision H): a put for every key
//                  whose value changed or appeared, a delete for every key that went away.
//                  Listeners still see a consistent sequence of states; what they miss are
//                  the intermediate values of keys that changed several times, and keys that
//                  came and went, between the two reads. The watch then resumes from H + 1.
//   bad values     a value the decoder rejects is reported (onError / 'error') with its key
//                  and revision; the view keeps the key's last good value. A later good
//                  value is applied as usual.

/** Turns a stored value into the configuration type. Throw to reject the value. */
export type ConfigDecoder<T> = (value: Buffer, key: string) => T;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Ready-made decoders. JSON is the default. Text must be valid UTF-8. */
export const decoders = {
  json: (value: Buffer): unknown => JSON.parse(utf8.decode(value)),
  string: (value: Buffer): string => utf8.decode(value),
  /** The stored bytes as they are. */
  raw: (value: Buffer): Buffer => value,
} as const;

export interface ConfigOptions<T> {
  /** Decodes each value (default: JSON). `key` is relative to the prefix. */
  decode?: ConfigDecoder<T>;
  /** Closes the watcher when aborted. */
  signal?: AbortSignal;
  /** Told about every error (values that fail to decode, lost watches, failed re-reads). */
  onError?: (err: ConfigError) => void;
  /** Keys per Range page of the initial read and of re-reads (default 1000). */
  pageSize?: number;
}

/** One key's current value and where it came from. */
export interface ConfigEntry<T> {
  /** Relative to the prefix. */
  readonly key: string;
  readonly value: T;
  readonly modRevision: number;
  readonly createRevision: number;
  readonly version: number;
  /** 0n if the key has no lease. */
  readonly lease: bigint;
}

/** One key of the view changed. `key` is relative to the prefix. */
export type ConfigChange<T> =
  | { readonly type: 'put'; readonly key: string; readonly value: T; readonly prevValue: T | undefined; readonly revision: number }
  | { readonly type: 'delete'; readonly key: string; readonly value: undefined; readonly prevValue: T; readonly revision: number };

/** The changes of one revision, applied to the view together. */
export interface ConfigBatch<T> {
  /** The view's revision once the batch is applied. */
  readonly revision: number;
  readonly changes: ReadonlyArray<ConfigChange<T>>;
  /** True for the difference emitted after a re-read (the watch's history was compacted). */
  readonly resync: boolean;
}

export interface ConfigEvents<T> {
  /** One changed key; the whole batch it belongs to is already applied to the view. */
  change: (change: ConfigChange<T>) => void;
  /** All changes of one revision, after their 'change' events. */
  batch: (batch: ConfigBatch<T>) => void;
  error: (err: ConfigError) => void;
}

/** A stored value that the decoder rejected; the view kept the key's last good value. */
export class ConfigDecodeError extends Error {
  constructor(
    readonly key: string,
    readonly revision: number,
    readonly value: Buffer,
    cause: unknown,
  ) {
    super(`cairn config: value of ${JSON.stringify(key)} at revision ${revision} could not be decoded: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'ConfigDecodeError';
  }
}

/** A 'change' or 'batch' listener threw; the view is unaffected. */
export class ConfigListenerError extends Error {
  constructor(cause: unknown) {
    super(`cairn config: a listener threw: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'ConfigListenerError';
  }
}

/** The watcher was closed (by close(), its signal, or its client closing). */
export class ConfigClosedError extends Error {
  constructor(cause?: unknown) {
    super('cairn config: closed', cause === undefined ? undefined : { cause });
    this.name = 'ConfigClosedError';
  }
}

/** An async iterator of the watcher fell more than CONFIG_ITERATOR_BACKLOG_MAX batches behind. */
export class ConfigBacklogError extends Error {
  constructor() {
    super(`cairn config: the iterator fell more than ${CONFIG_ITERATOR_BACKLOG_MAX} batches behind`);
    this.name = 'ConfigBacklogError';
  }
}

/** What reaches onError / 'error': decode and listener errors, and EtcdErrors of lost watches and failed reads. */
export type ConfigError = Error;

/** What the watcher needs of a client. */
export interface ConfigSource {
  get(q: GetQuery, opts?: CallOptions): Promise<GetResult>;
  watch(opts: WatchOptions): Watcher;
}

const PAGE_SIZE_DEFAULT = 1_000;
/** Batches an async iterator may have unread before it fails with ConfigBacklogError. */
export const CONFIG_ITERATOR_BACKLOG_MAX = 10_000;
/** Re-reads in a row that may hit a revision compacted between two pages. */
const READ_COMPACTED_RETRIES_MAX = 5;
const RETRY_BACKOFF_MIN_MS = 100;
const RETRY_BACKOFF_MAX_MS = 5_000;
/** How long waitFor waits for the watch before checking the prefix itself (doubling up to the max). */
const PROBE_DELAY_MIN_MS = 200;
const PROBE_DELAY_MAX_MS = 2_000;

/**
 * An immutable view of the configuration at one revision. The decoded values are shared
 * with the watcher and with later snapshots: treat them as read-only.
 */
export class ConfigSnapshot<T> implements Iterable<[string, T]> {
  constructor(
    readonly revision: number,
    private readonly map: ReadonlyMap<string, ConfigEntry<T>>,
  ) {}

  get size(): number {
    return this.map.size;
  }

  get(key: string): T | undefined {
    return this.map.get(key)?.value;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** The value with its revisions (e.g. modRevision for a compare-and-swap update). */
  entry(key: string): ConfigEntry<T> | undefined {
    return this.map.get(key);
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  *entries(): IterableIterator<[string, T]> {
    for (const [k, e] of this.map) yield [k, e.value];
  }

  [Symbol.iterator](): IterableIterator<[string, T]> {
    return this.entries();
  }

  /** A plain object of every key and value. */
  toObject(): Record<string, T> {
    const out: Record<string, T> = {};
    for (const [k, e] of this.map) out[k] = e.value;
    return out;
  }
}

type Listeners<T> = { [E in keyof ConfigEvents<T>]: Set<ConfigEvents<T>[E]> };

interface RevisionWaiter {
  revision: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** One `for await` over the watcher: the batches applied after it started. */
class Subscriber<T> {
  readonly queue: Array<ConfigBatch<T>> = [];
  waiter: { resolve: (r: IteratorResult<ConfigBatch<T>>) => void; reject: (e: unknown) => void } | null = null;
  done = false;
  error: Error | null = null;

  push(b: ConfigBatch<T>): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: b, done: false });
      return;
    }
    if (this.queue.length >= CONFIG_ITERATOR_BACKLOG_MAX) return this.end(new ConfigBacklogError());
    this.queue.push(b);
  }

  end(err: Error | null): void {
    if (this.done) return;
    this.done = true;
    this.error = err;
    if (err !== null) this.queue.length = 0; // the batches after a gap would mislead
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      if (err) w.reject(err);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<ConfigBatch<T>>> {
    const b = this.queue.shift();
    if (b !== undefined) return Promise.resolve({ value: b, done: false });
    if (this.error) return Promise.reject(this.error);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });

const backoffMs = (attempt: number): number => Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MIN_MS * 2 ** attempt);

/**
 * A live, consistent, typed view of every key under a prefix: `client.config<T>(prefix)`.
 * Keys are relative to the prefix. See the comment at the top of config.ts for the rules.
 */
export class ConfigWatcher<T> implements AsyncIterable<ConfigBatch<T>> {
  /** Resolves once the initial read is applied; rejects if it fails (the watcher is then closed). */
  readonly ready: Promise<void>;
  private resolveReady!: () => void;
  private rejectReady!: (e: unknown) => void;
  private isReady = false;

  private readonly range: { key: Buffer; rangeEnd: Buffer };
  private readonly prefixBytes: number;
  private readonly decode: ConfigDecoder<T>;
  private readonly pageSize: number;
  private readonly onError: ((err: ConfigError) => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  /** Aborts in-flight reads and sleeps on close. */
  private readonly abort = new AbortController();

  /** Good values. Copy-on-write: a snapshot shares the map until the next batch. */
  private values = new Map<string, ConfigEntry<T>>();
  private valuesShared = false;
  /** modRevision of every key's newest stored value, decodable or not (what a re-read is compared with). */
  private readonly stored = new Map<string, number>();
  private readonly rejected = new Map<string, ConfigDecodeError>();
  private rev = 0;

  private watcher: Watcher | null = null;
  private resyncing = false;
  private closed = false;
  private readonly listeners: Listeners<T> = { change: new Set(), batch: new Set(), error: new Set() };
  private readonly subscribers = new Set<Subscriber<T>>();
  private waiters: RevisionWaiter[] = [];
  private probeTimer: NodeJS.Timeout | null = null;
  private probeDelayMs = PROBE_DELAY_MIN_MS;
  private probing = false;
  private readonly onAbort = (): void => this.shut(new ConfigClosedError(this.signal?.reason));

  /** Starts reading at once; `await w.ready` (or use `ConfigWatcher.open` / `client.config`). */
  constructor(
    private readonly source: ConfigSource,
    /** The prefix every key of the view starts with. */
    readonly prefix: string,
    opts: ConfigOptions<T> = {},
  ) {
    const r = wireRange({ key: prefix, prefix: true });
    this.range = { key: r.key, rangeEnd: r.rangeEnd ?? Buffer.from([0]) };
    this.prefixBytes = Buffer.byteLength(prefix, 'utf8');
    this.decode = opts.decode ?? (decoders.json as ConfigDecoder<T>);
    this.pageSize = opts.pageSize ?? PAGE_SIZE_DEFAULT;
    if (!Number.isSafeInteger(this.pageSize) || this.pageSize < 1) throw new RangeError(`cairn config: pageSize must be a positive integer, not ${opts.pageSize}`);
    this.onError = opts.onError;
    this.signal = opts.signal;
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    if (this.signal?.aborted === true) {
      this.onAbort();
      return;
    }
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    void this.run();
  }

  /** Start a watcher and wait for its initial read; rejects (closing it) if that read fails. */
  static async open<T>(source: ConfigSource, prefix: string, opts?: ConfigOptions<T>): Promise<ConfigWatcher<T>> {
    const w = new ConfigWatcher<T>(source, prefix, opts);
    await w.ready;
    return w;
  }

  /** The revision the view is at: it holds every change under the prefix up to here. */
  get revision(): number {
    return this.rev;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The current value of a key (relative to the prefix). */
  get(key: string): T | undefined {
    return this.values.get(key)?.value;
  }

  has(key: string): boolean {
    return this.values.has(key);
  }

  /** The current value with its revisions. */
  entry(key: string): ConfigEntry<T> | undefined {
    return this.values.get(key);
  }

  get size(): number {
    return this.values.size;
  }

  /** The whole view at one revision; later changes do not alter it. O(1). */
  snapshot(): ConfigSnapshot<T> {
    this.valuesShared = true;
    return new ConfigSnapshot(this.rev, this.values);
  }

  /** [key, value] of every key, at one revision (of a snapshot). */
  entries(): IterableIterator<[string, T]> {
    return this.snapshot().entries();
  }

  /** Keys whose newest stored value the decoder rejected, with the error (the view keeps their last good value). */
  get rejectedValues(): ReadonlyMap<string, ConfigDecodeError> {
    return new Map(this.rejected);
  }

  on<E extends keyof ConfigEvents<T>>(event: E, listener: ConfigEvents<T>[E]): this {
    (this.listeners[event] as Set<ConfigEvents<T>[E]>).add(listener);
    return this;
  }

  off<E extends keyof ConfigEvents<T>>(event: E, listener: ConfigEvents<T>[E]): this {
    (this.listeners[event] as Set<ConfigEvents<T>[E]>).delete(listener);
    return this;
  }

  /**
   * Resolves once the view is at `revision` or later (e.g. the revision of a write of this
   * service). If the prefix has no change at that revision (a write elsewhere, a delete of a
   * missing key), the view checks the prefix itself after a short quiet time and moves to the
   * cluster's revision when nothing under the prefix differs. Rejects with ConfigClosedError
   * on close, or with the signal's reason.
   */
  waitFor(revision: number, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.rev >= revision) return Promise.resolve();
    if (this.closed) return Promise.reject(new ConfigClosedError());
    const signal = opts.signal;
    if (signal?.aborted === true) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(signal?.reason);
      };
      const waiter: RevisionWaiter = {
        revision,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.probeDelayMs = PROBE_DELAY_MIN_MS;
      this.scheduleProbe();
    });
  }

  /**
   * Change batches, one per revision, applied after the iteration started. To start from a
   * known state, take `snapshot()` first: every batch then has a higher revision.
   */
  [Symbol.asyncIterator](): AsyncIterator<ConfigBatch<T>> {
    const sub = new Subscriber<T>();
    if (this.closed) sub.end(null);
    else this.subscribers.add(sub);
    return {
      next: () => sub.next(),
      return: async () => {
        this.subscribers.delete(sub);
        sub.end(null);
        return { value: undefined, done: true };
      },
    };
  }

  /** Stop watching: the watch is canceled, iterations end, pending waitFor calls reject. */
  close(): void {
    this.shut(new ConfigClosedError());
  }

  // -------------------------------------------------------------------------------
  // Reading and watching

  private async run(): Promise<void> {
    let needRead = true;
    let attempt = 0;
    while (!this.closed) {
      try {
        if (needRead) {
          await this.resync();
          needRead = false;
        }
        if (this.closed) return;
        const w = this.source.watch({ key: this.range.key, rangeEnd: this.range.rangeEnd, startRevision: this.rev + 1 });
        this.watcher = w;
        for await (const batch of w) {
          attempt = 0;
          this.applyWatchBatch(batch);
        }
        // The iteration ends without an error only when the watch was canceled: by close(),
        // or by the client closing.
        if (!this.closed) this.shut(new ConfigClosedError(new Error('the client was closed')));
        return;
      } catch (e) {
        if (this.closed) return;
        if (!this.isReady || e instanceof ClientClosedError) {
          this.shut(e);
          return;
        }
        if (e instanceof CompactedError && !needRead) {
          // The watch's history after our revision is gone: re-read the prefix (at once; a
          // re-read that fails backs off below).
          needRead = true;
          continue;
        }
        this.report(e instanceof Error ? e : new Error(String(e)));
        await sleep(backoffMs(attempt++), this.abort.signal);
      }
    }
  }

  /** Read the whole prefix at one revision and make it the view (emitting the difference unless this is the first read). */
  private async resync(): Promise<void> {
    this.resyncing = true;
    try {
      const { revision, kvs } = await this.readPrefix(false);
      if (this.closed) return;
      if (revision < this.rev) throw new Error(`cairn config: a re-read answered revision ${revision}, older than the view's ${this.rev}`);
      this.applyRead(revision, kvs);
    } finally {
      this.resyncing = false;
    }
  }

  /**
   * Every key under the prefix at one revision: the first page fixes the revision, the
   * others are read at it. If that revision is compacted between two pages, start over.
   */
  private async readPrefix(keysOnly: boolean): Promise<{ revision: number; kvs: KeyValue[] }> {
    for (let attempt = 0; ; attempt++) {
      try {
        const kvs: KeyValue[] = [];
        let revision = 0;
        let key = this.range.key;
        for (;;) {
          const q: GetQuery = { key, rangeEnd: this.range.rangeEnd, limit: this.pageSize, keysOnly };
          if (revision > 0) q.revision = revision;
          const r = await this.source.get(q, { signal: this.abort.signal });
          if (revision === 0) revision = r.header.revision;
          for (const kv of r.kvs) kvs.push(kv);
          if (!r.more || r.kvs.length === 0) return { revision, kvs };
          key = Buffer.concat([r.kvs[r.kvs.length - 1].key, Buffer.from([0])]);
        }
      } catch (e) {
        if (e instanceof CompactedError && attempt < READ_COMPACTED_RETRIES_MAX && !this.closed) continue;
        throw e;
      }
    }
  }

  private relKey(key: Buffer): string {
    return key.subarray(this.prefixBytes).toString('utf8');
  }

  /** The first read, or a re-read after compaction: the difference to the view as one batch. */
  private applyRead(revision: number, kvs: KeyValue[]): void {
    const pending = new PendingBatch<T>(revision);
    const seen = new Set<string>();
    for (const kv of kvs) {
      const key = this.relKey(kv.key);
      seen.add(key);
      if (this.stored.get(key) === kv.modRevision) continue; // unchanged since the view's revision
      this.applyPut(pending, key, kv);
    }
    for (const key of [...this.stored.keys()]) if (!seen.has(key)) this.applyDelete(pending, key);
    pending.changes.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.rev = revision;
    const first = !this.isReady;
    if (first) {
      // The initial state is the view itself, not a change.
      pending.changes.length = 0;
      this.isReady = true;
      this.resolveReady();
    }
    this.publish(pending, !first);
  }

  /** Events of the watch, grouped by revision: each revision is applied whole, then published. */
  private applyWatchBatch(batch: WatchBatch): void {
    let i = 0;
    const events = batch.events;
    while (i < events.length) {
      const revision = events[i].kv.modRevision;
      let j = i;
      while (j < events.length && events[j].kv.modRevision === revision) j++;
      // A revision at or below the view's was folded in by a waitFor check (see probe).
      if (revision > this.rev) this.applyRevision(revision, events.slice(i, j));
      i = j;
    }
  }

  private applyRevision(revision: number, events: WatchEvent[]): void {
    const pending = new PendingBatch<T>(revision);
    for (const e of events) {
      const key = this.relKey(e.kv.key);
      if (e.type === 'put') this.applyPut(pending, key, e.kv);
      else this.applyDelete(pending, key);
    }
    this.rev = revision;
    this.publish(pending, false);
  }

  private writableValues(): Map<string, ConfigEntry<T>> {
    if (this.valuesShared) {
      this.values = new Map(this.values);
      this.valuesShared = false;
    }
    return this.values;
  }

  private applyPut(pending: PendingBatch<T>, key: string, kv: KeyValue): void {
    this.stored.set(key, kv.modRevision);
    let value: T;
    try {
      value = this.decode(kv.value, key);
    } catch (e) {
      const err = new ConfigDecodeError(key, kv.modRevision, kv.value, e);
      this.rejected.set(key, err);
      pending.errors.push(err);
      return;
    }
    this.rejected.delete(key);
    const values = this.writableValues();
    const prev = values.get(key);
    values.set(key, { key, value, modRevision: kv.modRevision, createRevision: kv.createRevision, version: kv.version, lease: kv.lease });
    pending.changes.push({ type: 'put', key, value, prevValue: prev?.value, revision: pending.revision });
  }

  private applyDelete(pending: PendingBatch<T>, key: string): void {
    this.stored.delete(key);
    this.rejected.delete(key);
    const prev = this.values.get(key);
    if (prev === undefined) return; // never had a good value: the view does not change
    this.writableValues().delete(key);
    pending.changes.push({ type: 'delete', key, value: undefined, prevValue: prev.value, revision: pending.revision });
  }

  /** Tell everyone about a batch that is already applied in full. */
  private publish(pending: PendingBatch<T>, resync: boolean): void {
    for (const err of pending.errors) this.report(err);
    if (pending.changes.length > 0) {
      const batch: ConfigBatch<T> = { revision: pending.revision, changes: pending.changes, resync };
      for (const change of batch.changes) {
        for (const fn of this.listeners.change) this.callListener(() => fn(change));
      }
      for (const fn of this.listeners.batch) this.callListener(() => fn(batch));
      for (const sub of this.subscribers) {
        sub.push(batch);
        if (sub.done) this.subscribers.delete(sub);
      }
    }
    this.settleWaiters();
  }

  private callListener(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.report(new ConfigListenerError(e));
    }
  }

  /** onError and 'error' listeners; a warning if nobody listens (never a crash). */
  private report(err: ConfigError): void {
    let told = false;
    const tell = (fn: (e: ConfigError) => void): void => {
      told = true;
      try {
        fn(err);
      } catch (e) {
        process.emitWarning(`cairn config: an error listener threw: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    if (this.onError) tell(this.onError);
    for (const fn of this.listeners.error) tell(fn);
    if (!told) process.emitWarning(err);
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const due = this.waiters.filter((w) => w.revision <= this.rev);
    if (due.length === 0) return;
    this.waiters = this.waiters.filter((w) => w.revision > this.rev);
    for (const w of due) w.resolve();
  }

  // -------------------------------------------------------------------------------
  // waitFor's check of the prefix
  //
  // A watch only carries changes under its prefix, so a revision with no change here (a
  // write elsewhere) never reaches the view through it. While someone waits for a revision
  // the view has not reached, the prefix is read (keys and revisions only) at the cluster's
  // current revision H. If every key has the same modRevision as in the view, nothing under
  // the prefix differs between the view and H, and the view moves to H without a change.
  // Watch events up to H that still arrive afterwards are skipped: they can only be keys
  // created and deleted again before H, which the view (at H) never held.

  private scheduleProbe(): void {
    if (this.probeTimer !== null || this.probing || this.closed) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      void this.probe();
    }, this.probeDelayMs);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    if (this.closed || !this.waiters.some((w) => w.revision > this.rev)) return;
    this.probing = true;
    try {
      if (!this.isReady || this.resyncing) return;
      const { revision, kvs } = await this.readPrefix(true);
      if (this.closed || this.resyncing || revision <= this.rev) return;
      if (kvs.length !== this.stored.size) return;
      for (const kv of kvs) if (this.stored.get(this.relKey(kv.key)) !== kv.modRevision) return;
      this.rev = revision;
      this.settleWaiters();
    } catch {
      // A failed check changes nothing; the next one (or the watch) will do.
    } finally {
      this.probing = false;
      this.probeDelayMs = Math.min(PROBE_DELAY_MAX_MS, this.probeDelayMs * 2);
      if (this.waiters.length > 0) this.scheduleProbe();
    }
  }

  // -------------------------------------------------------------------------------

  private shut(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.abort.abort();
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    if (this.watcher !== null) void this.watcher.cancel();
    this.watcher = null;
    if (!this.isReady) this.rejectReady(err);
    const closedErr = err instanceof ConfigClosedError ? err : new ConfigClosedError(err);
    for (const w of this.waiters.splice(0)) w.reject(closedErr);
    for (const sub of this.subscribers) sub.end(null);
    this.subscribers.clear();
  }
}

/** The changes and errors of one revision, collected before anyone is told. */
class PendingBatch<T> {
  readonly changes: Array<ConfigChange<T>> = [];
  readonly errors: ConfigDecodeError[] = [];
  constructor(readonly revision: number) {}
}
