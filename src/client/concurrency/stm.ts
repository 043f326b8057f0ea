import type { Client } from '../client';
import { compare, op, type Comparison, type GetResult, type Operation, type PutOptions, type TxnResult } from '../kv';
import { abortError } from '../pool';
import { ErrSTMConflict } from './errors';

// etcd's software transactional memory (clientv3/concurrency/stm.go): the apply function
// reads and writes through an STM; its writes are committed in one Txn guarded by the
// mod revisions of everything it read, and the function is run again on conflict.
//
// Isolation levels, as etcd's:
//  - 'serializable-snapshot' (default, etcd's SerializableSnapshot): every read after the
//    first is served at the first read's revision; the commit checks that no read key and
//    no written key was modified after that snapshot.
//  - 'serializable': reads as above; the commit checks only the read keys.
//  - 'repeatable-read' (etcd's RepeatableReads): each key is read once (serializable reads,
//    at whatever revision); the commit checks that no read key changed since it was read.
//  - 'read-committed': no check at all.
// Unlike etcd (which retries forever) the number of attempts is bounded (ErrSTMConflict).

export type Isolation = 'serializable-snapshot' | 'serializable' | 'repeatable-read' | 'read-committed';

export interface STMOptions {
  isolation?: Isolation;
  /** Keys read before the first attempt (etcd's WithPrefetch). */
  prefetch?: string[];
  /** Stop retrying (and abort in-flight calls). */
  signal?: AbortSignal;
  /** Attempts before giving up with ErrSTMConflict (default 100). */
  maxAttempts?: number;
}

/** What the apply function sees. Reads are async; writes are buffered until commit. */
export interface STM {
  /** The value of the first key that has one (buffered writes first); '' if none exists (etcd's Get). */
  get(...keys: string[]): Promise<string>;
  /** Buffer a put. */
  put(key: string, value: string, opts?: PutOptions): void;
  /** The key's mod revision in the snapshot (0 if absent). */
  rev(key: string): Promise<number>;
  /** Buffer a delete. */
  del(key: string): void;
}

interface Write {
  value: string;
  op: Operation;
}

/** ModRevision(key) < rev+1 if the key was read, = 0 if it did not exist (etcd's isKeyCurrent). */
function isKeyCurrent(key: string, r: GetResult): Comparison {
  if (r.kvs.length > 0) return compare.modRevision(key, '<', r.kvs[0].modRevision + 1);
  return compare.modRevision(key, '=', 0);
}

function respToValue(r: GetResult | undefined): string {
  return r === undefined || r.kvs.length === 0 ? '' : r.kvs[0].valueString();
}

class StmImpl implements STM {
  rset = new Map<string, GetResult>();
  wset = new Map<string, Write>();
  /** Results of the failed commit's Else branch, used by the next attempt (serializable levels). */
  prefetch = new Map<string, GetResult>();
  /** The snapshot revision (serializable levels), once the first read set it. */
  snapshotRev: number | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: Client,
    private readonly iso: Isolation,
    private readonly signal: AbortSignal | undefined,
  ) {}

  private get serializableLevel(): boolean {
    return this.iso === 'serializable-snapshot' || this.iso === 'serializable';
  }

  reset(): void {
    this.rset = new Map();
    this.wset = new Map();
    this.chain = Promise.resolve();
  }

  /** Reads run one at a time (a snapshot is defined by the first read, as in Go). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async fetch(keys: string[]): Promise<GetResult | undefined> {
    if (keys.length === 0) return undefined;
    for (const k of keys) {
      const have = this.rset.get(k);
      if (have !== undefined) return have;
    }
    const serializable = this.iso !== 'serializable-snapshot' && this.iso !== 'serializable' ? true : this.snapshotRev !== null;
    const rev = this.serializableLevel && this.snapshotRev !== null ? this.snapshotRev : undefined;
    const r = await this.client
      .txn()
      .then(...keys.map((k) => op.get({ key: k, serializable, ...(rev !== undefined ? { revision: rev } : {}) })))
      .commit({ signal: this.signal });
    keys.forEach((k, i) => {
      const g = r.responses[i];
      if (g !== undefined && g.type === 'get') this.rset.set(k, { ...g, header: r.header });
    });
    return this.rset.get(keys[0]);
  }

  get(...keys: string[]): Promise<string> {
    for (const k of keys) {
      const w = this.wset.get(k);
      if (w !== undefined) return Promise.resolve(w.value);
    }
    return this.serial(async () => {
      if (!this.serializableLevel) return respToValue(await this.fetch(keys));
      const firstRead = this.rset.size === 0;
      for (const k of keys) {
        const p = this.prefetch.get(k);
        if (p !== undefined) {
          this.prefetch.delete(k);
          this.rset.set(k, p);
        }
      }
      const r = await this.fetch(keys);
      // The transaction's base revision is the first read's.
      if (firstRead && r !== undefined) this.snapshotRev = r.header.revision;
      return respToValue(r);
    });
  }

  put(key: string, value: string, opts?: PutOptions): void {
    this.wset.set(key, { value, op: op.put(key, value, opts) });
  }

  del(key: string): void {
    this.wset.set(key, { value: '', op: op.delete(key) });
  }

  async rev(key: string): Promise<number> {
    if (this.serializableLevel) await this.get(key);
    const r = await this.serial(() => this.fetch([key]));
    return r !== undefined && r.kvs.length > 0 ? r.kvs[0].modRevision : 0;
  }

  /** The smallest header revision of the read set (etcd's readSet.first). */
  private firstRev(): number {
    let ret = Number.MAX_SAFE_INTEGER - 1;
    for (const r of this.rset.values()) if (r.header.revision < ret) ret = r.header.revision;
    return ret;
  }

  private conflicts(): Comparison[] {
    const reads = [...this.rset].map(([k, r]) => isKeyCurrent(k, r));
    switch (this.iso) {
      case 'serializable-snapshot': {
        const first = this.firstRev();
        return [...reads, ...[...this.wset.keys()].map((k) => compare.modRevision(k, '<', first + 1))];
      }
      case 'serializable':
      case 'repeatable-read':
        return reads;
      case 'read-committed':
        return [];
    }
  }

  /** The committed response, or null on conflict. */
  async commit(): Promise<TxnResult | null> {
    const puts = [...this.wset.values()].map((w) => w.op);
    const txn = this.client.txn().if(...this.conflicts()).then(...puts);
    if (!this.serializableLevel) {
      const r = await txn.commit({ signal: this.signal });
      return r.succeeded ? r : null;
    }
    // Else: read every key of the read set, to prefetch the next attempt.
    const keys = [...this.rset.keys()];
    const r = await txn.else(...keys.map((k) => op.get(k))).commit({ signal: this.signal });
    if (r.succeeded) return r;
    const pre = new Map<string, GetResult>();
    keys.forEach((k, i) => {
      const g = r.responses[i];
      if (g !== undefined && g.type === 'get') pre.set(k, { ...g, header: r.header });
    });
    this.prefetch = pre;
    this.snapshotRev = null;
    return null;
  }

  /** Start a new attempt: empty read and write sets (the prefetch of a failed commit is kept). */
  begin(): void {
    this.reset();
    this.snapshotRev = null;
  }
}

/**
 * Run `apply` as a transaction (etcd's concurrency.NewSTM): re-run it until its writes
 * commit without conflict. Resolves with the commit's TxnResult. If apply throws, nothing
 * is written and runSTM rejects with that error.
 */
export async function runSTM(client: Client, apply: (stm: STM) => void | Promise<void>, opts: STMOptions = {}): Promise<TxnResult> {
  const iso = opts.isolation ?? 'serializable-snapshot';
  const maxAttempts = opts.maxAttempts ?? 100;
  const s = new StmImpl(client, iso, opts.signal);
  const run =
    opts.prefetch !== undefined && opts.prefetch.length > 0
      ? async (stm: STM): Promise<void> => {
          await stm.get(...(opts.prefetch as string[]));
          await apply(stm);
        }
      : apply;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (opts.signal?.aborted) throw abortError(opts.signal);
    s.begin();
    await run(s);
    const r = await s.commit();
    if (r !== null) return r;
  }
  throw new ErrSTMConflict(maxAttempts);
}

/** etcd's NewSTMRepeatable. */
export function runSTMRepeatable(client: Client, apply: (stm: STM) => void | Promise<void>, opts: Omit<STMOptions, 'isolation'> = {}): Promise<TxnResult> {
  return runSTM(client, apply, { ...opts, isolation: 'repeatable-read' });
}

/** etcd's NewSTMSerializable. */
export function runSTMSerializable(client: Client, apply: (stm: STM) => void | Promise<void>, opts: Omit<STMOptions, 'isolation'> = {}): Promise<TxnResult> {
  return runSTM(client, apply, { ...opts, isolation: 'serializable' });
}

/** etcd's NewSTMReadCommitted. */
export function runSTMReadCommitted(client: Client, apply: (stm: STM) => void | Promise<void>, opts: Omit<STMOptions, 'isolation'> = {}): Promise<TxnResult> {
  return runSTM(client, apply, { ...opts, isolation: 'read-committed' });
}
