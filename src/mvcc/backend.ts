import { Level } from 'level';
import { access, open as openFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

// The LevelDB side of the store. Writes queue up in memory and go to LevelDB as one batch
// per `commit()`; while a batch is being written, later commits coalesce into the next one,
// so there is never more than one write in flight and batches land in order.
//
// Durability comes from the log, not from here: a batch is written without sync, the
// applied index rides in the same batch, and a replay of the log after a crash re-applies
// whatever a lost batch held. `sync()` forces everything to disk before the log may be
// truncated.

export type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Completes a replacement a crash interrupted: the new database is whole once renamed into place. */
async function finishReplacement(path: string): Promise<void> {
  const exists = async (p: string): Promise<boolean> => access(p).then(() => true, () => false);
  if (!(await exists(path)) && (await exists(`${path}.new`))) await rename(`${path}.new`, path);
  await rm(`${path}.old`, { recursive: true, force: true });
  await rm(`${path}.new`, { recursive: true, force: true });
}

async function syncDir(dir: string): Promise<void> {
  const d = await openFile(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * Writes waiting for the next commit. On classic-level they go straight into a native
 * LevelDB WriteBatch (its chained batch's `_put`/`_del`, the implementation methods the
 * public ones end in): the bytes are copied at once, so the key buffers die young instead
 * of waiting out the commit delay in the JS heap, and the commit passes no op objects for
 * the binding to read property by property (about 2.5 µs per op on this machine). Any
 * other Level keeps them in an array for db.batch().
 */
interface PendingWrites {
  readonly length: number;
  put(key: Buffer, value: Buffer): void;
  del(key: Buffer): void;
  write(sync: boolean): Promise<void>;
}

interface NativeChainedBatch {
  _put(key: Buffer, value: Buffer): void;
  _del(key: Buffer): void;
  _write(options: { sync: boolean }): Promise<void>;
  close(): Promise<void>;
}

class NativePending implements PendingWrites {
  length = 0;
  constructor(private readonly batch: NativeChainedBatch) {}

  put(key: Buffer, value: Buffer): void {
    this.batch._put(key, value);
    this.length++;
  }

  del(key: Buffer): void {
    this.batch._del(key);
    this.length++;
  }

  async write(sync: boolean): Promise<void> {
    try {
      await this.batch._write({ sync });
    } finally {
      await this.batch.close(); // detaches it from the database
    }
  }
}

class ArrayPending implements PendingWrites {
  private readonly ops: BatchOp[] = [];
  constructor(private readonly db: Level<Buffer, Buffer>) {}

  get length(): number {
    return this.ops.length;
  }

  put(key: Buffer, value: Buffer): void {
    this.ops.push({ type: 'put', key, value });
  }

  del(key: Buffer): void {
    this.ops.push({ type: 'del', key });
  }

  write(sync: boolean): Promise<void> {
    return this.db.batch(this.ops, { sync });
  }
}

function pendingWrites(db: Level<Buffer, Buffer>): PendingWrites {
  const inner = db as unknown as { status: string; _chainedBatch?: () => Partial<NativeChainedBatch> };
  if (inner.status === 'open' && typeof inner._chainedBatch === 'function') {
    const b = inner._chainedBatch();
    if (typeof b._put === 'function' && typeof b._del === 'function' && typeof b._write === 'function' && typeof b.close === 'function') {
      return new NativePending(b as NativeChainedBatch);
    }
    void b.close?.();
  }
  return new ArrayPending(db);
}

/** Entries read per LevelDB iterator step when scanning. */
const SCAN_CHUNK_ENTRIES = 10_000;
/** Bytes read per LevelDB iterator step at most (about; a step ends after the entry that passes it). */
const SCAN_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * LevelDB's memtable is 32 MiB instead of its default 4: under a put load of about 5 MiB/s of
 * records a member flushed a level-0 table every second and merged them as often, and its
 * compaction thread took 0.22 s of CPU in 6 s of a 3-member put benchmark; with 32 MiB,
 * 0.08 s. The cost is memory (up to two memtables, the second while it is written out) and
 * up to 32 MiB of LevelDB log replayed at open. What is durable, and when, does not change:
 * LevelDB's own log holds whatever its memtable holds.
 */
const LEVEL_OPTIONS = { keyEncoding: 'buffer', valueEncoding: 'buffer', writeBufferSize: 32 * 1024 * 1024 } as const;

export class Backend {
  /** Created at the first write after a commit took the previous one. */
  private pending: PendingWrites | undefined;
  private waiters: Waiter[] = [];
  private writing = false;
  private syncRequested = false;
  private failed: Error | undefined;
  /** Ops to add to every batch as it is taken (the store's applied index, current at that moment). */
  flushHook: (() => BatchOp[]) | undefined;
  /** Told how long each batch write took, in seconds (the backend commit duration metric). */
  onCommitDuration: ((seconds: number) => void) | undefined;

  private constructor(
    public db: Level<Buffer, Buffer>,
    private readonly path: string,
    private readonly onFatal: (err: Error) => void,
  ) {}

  static async open(path: string, onFatal: (err: Error) => void): Promise<Backend> {
    await finishReplacement(path);
    const db = new Level<Buffer, Buffer>(path, LEVEL_OPTIONS);
    await db.open();
    return new Backend(db, path, onFatal);
  }

  /**
   * Replaces the whole database with one that `build` fills (a snapshot from the leader).
   * The new database is complete on disk before it takes the old one's place by renames,
   * so a crash at any point leaves either the old or the new one, never a mix.
   */
  async replaceWith(build: (fresh: Level<Buffer, Buffer>) => Promise<void>): Promise<void> {
    const fresh = `${this.path}.new`;
    await rm(fresh, { recursive: true, force: true });
    const next = new Level<Buffer, Buffer>(fresh, LEVEL_OPTIONS);
    await next.open();
    try {
      await build(next);
    } finally {
      await next.close();
    }
    await this.commit();
    await this.db.close();
    await rename(this.path, `${this.path}.old`);
    await rename(fresh, this.path);
    await syncDir(dirname(this.path));
    await rm(`${this.path}.old`, { recursive: true, force: true });
    this.db = new Level<Buffer, Buffer>(this.path, LEVEL_OPTIONS);
    await this.db.open();
  }

  put(key: Buffer, value: Buffer): void {
    (this.pending ??= pendingWrites(this.db)).put(key, value);
  }

  del(key: Buffer): void {
    (this.pending ??= pendingWrites(this.db)).del(key);
  }

  private soon: NodeJS.Timeout | undefined;

  /**
   * Writes what is queued within `delayMs`, coalescing with later work. LevelDB is not on
   * the durability path (the log is), so apply batches can share a LevelDB batch; fewer,
   * larger batches leave the disk to the WAL's fdatasyncs.
   */
  commitSoon(delayMs: number): void {
    if (this.soon !== undefined || this.failed) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.commit().catch(() => undefined); // a failure is fatal through onFatal
    }, delayMs);
  }

  /** Writes everything queued so far; resolves when it is in LevelDB. */
  commit(): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      if (!this.writing) void this.writeLoop();
    });
  }

  /** Like commit(), and the batch is fsynced: everything queued so far survives power loss. */
  sync(): Promise<void> {
    this.syncRequested = true;
    return this.commit();
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    return this.db.get(key);
  }

  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    return this.db.getMany(keys);
  }

  /**
   * Visits every entry in [gte, lt) in key order, a chunk at a time (LevelDB's iterator reads
   * one point in time); `onChunk` may await, e.g. to commit what it queued.
   */
  async scan(gte: Buffer, lt: Buffer, onChunk: (entries: Array<[Buffer, Buffer]>) => void | Promise<void>): Promise<void> {
    // classic-level stops a step at 16 KiB by default (about 50 records of 256 bytes): a
    // restore at a million keys made 20 000 thread-pool round trips. A step now ends at
    // SCAN_CHUNK_ENTRIES or SCAN_CHUNK_BYTES, and the next one is read (on LevelDB's thread)
    // while this one is visited.
    const it = this.db.iterator({ gte, lt, highWaterMarkBytes: SCAN_CHUNK_BYTES } as Parameters<typeof this.db.iterator>[0]);
    const step = (): Promise<Array<[Buffer, Buffer]>> => it.nextv(SCAN_CHUNK_ENTRIES) as Promise<Array<[Buffer, Buffer]>>;
    let next: Promise<Array<[Buffer, Buffer]>> | undefined = step();
    try {
      for (;;) {
        const chunk = await next;
        next = undefined;
        if (chunk.length === 0) break;
        next = step();
        await onChunk(chunk);
      }
    } finally {
      if (next !== undefined) await next.catch(() => undefined);
      await it.close();
    }
  }

  async close(): Promise<void> {
    if (this.soon !== undefined) clearTimeout(this.soon);
    this.soon = undefined;
    await this.commit().catch(() => undefined);
    await this.db.close();
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    while (this.waiters.length > 0) {
      let writes = this.pending;
      this.pending = undefined;
      const waiters = this.waiters;
      const sync = this.syncRequested;
      this.waiters = [];
      this.syncRequested = false;
      try {
        const extra = this.flushHook?.() ?? [];
        if (extra.length > 0) {
          const w = (writes ??= pendingWrites(this.db));
          for (const op of extra) {
            if (op.type === 'put') w.put(op.key, op.value);
            else w.del(op.key);
          }
        }
        const started = process.hrtime.bigint();
        // One LevelDB batch, never split: it carries the applied index with the changes of
        // the entries up to it, and a torn pair would make a replay apply some entries twice.
        if (writes !== undefined && writes.length > 0) {
          await writes.write(sync);
          this.onCommitDuration?.(Number(process.hrtime.bigint() - started) / 1e9);
        }
        for (const w of waiters) w.resolve();
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        this.failed = err;
        for (const w of waiters) w.reject(err);
        this.onFatal(err);
        break;
      }
    }
    this.writing = false;
  }
}
