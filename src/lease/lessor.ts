import { Backend } from '../mvcc/backend';
import { MvccStore, indexKey } from '../mvcc/store';
import { EventType, WatchEvent } from '../mvcc/types';

// The replicated half of leases: which leases exist, their granted TTL, and which keys are
// attached to each. It changes only by applying log entries (grant, revoke) and by the
// store's own events (a put with a lease attaches the key, a delete or a put with another
// lease detaches it), so every member holds the same. When leases expire is decided by the
// leader alone (server/lease-expiry.ts) and reaches here as revoke entries.
//
// LevelDB layout, format version 1, beside the store's records:
//   "l" | lease id (u64be of the int64) -> u8 version (1) | u64be granted TTL in seconds
// Attachments are not stored: they are rebuilt from the lease field of the live keys.

const LEASE_PREFIX = 0x6c; // 'l'
const LEASE_RECORD_VERSION = 1;

/** etcd's largest lease TTL, in seconds. */
export const LEASE_TTL_MAX_SECONDS = 9_000_000_000;

export interface Lease {
  readonly id: bigint;
  readonly ttlSeconds: number;
  /** Attached keys, as index keys (latin1 strings of the key bytes). */
  readonly keys: Set<string>;
}

export class LeaseExistsError extends Error {}
export class LeaseNotFoundError extends Error {}

export class Lessor {
  private readonly leases = new Map<bigint, Lease>();
  private readonly grantedListeners: Array<(l: Lease) => void> = [];
  private readonly revokedListeners: Array<(id: bigint) => void> = [];

  private constructor(private readonly backend: Backend) {}

  static async open(backend: Backend, store: MvccStore): Promise<Lessor> {
    const lessor = new Lessor(backend);
    await lessor.load(store);
    store.onEvents((events) => lessor.follow(events));
    return lessor;
  }

  /** Reads leases back from LevelDB and re-attaches the live keys (start-up, snapshot install). */
  async load(store: MvccStore): Promise<void> {
    const lessor = this;
    lessor.leases.clear();
    const backend = this.backend;
    await backend.scan(Buffer.of(LEASE_PREFIX), Buffer.of(LEASE_PREFIX + 1), (chunk) => {
      for (const [k, v] of chunk) {
        if (k.length !== 9 || v[0] !== LEASE_RECORD_VERSION) throw new Error(`lease: unreadable record ${k.toString('hex')}`);
        const id = k.readBigInt64BE(1);
        lessor.leases.set(id, { id, ttlSeconds: Number(v.readBigUInt64BE(1)), keys: new Set() });
      }
    });
    if (lessor.leases.size > 0) store.forEachLeased((key, lease) => lessor.leases.get(lease)?.keys.add(key));
  }

  onGranted(listener: (l: Lease) => void): void {
    this.grantedListeners.push(listener);
  }

  onRevoked(listener: (id: bigint) => void): void {
    this.revokedListeners.push(listener);
  }

  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  get(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  all(): Lease[] {
    return [...this.leases.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get size(): number {
    return this.leases.size;
  }

  /** Applies a grant. The TTL has already been raised to the minimum by the proposer. */
  grant(id: bigint, ttlSeconds: number): Lease {
    if (this.leases.has(id)) throw new LeaseExistsError(`lease ${id} already exists`);
    const lease: Lease = { id, ttlSeconds, keys: new Set() };
    this.leases.set(id, lease);
    const v = Buffer.alloc(9);
    v[0] = LEASE_RECORD_VERSION;
    v.writeBigUInt64BE(BigInt(ttlSeconds), 1);
    this.backend.put(leaseKey(id), v);
    for (const l of this.grantedListeners) l(lease);
    return lease;
  }

  /** Applies a revoke: deletes every attached key in one write transaction (one revision). */
  revoke(id: bigint, store: MvccStore): void {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new LeaseNotFoundError(`lease ${id} not found`);
    const keys = [...lease.keys].sort(); // latin1 order is byte order: deletes in key order, as etcd does
    if (keys.length > 0) {
      const txn = store.write();
      for (const k of keys) txn.deleteRange(Buffer.from(k, 'latin1'), undefined);
      txn.end();
    }
    this.leases.delete(id);
    this.backend.del(leaseKey(id));
    for (const l of this.revokedListeners) l(id);
  }

  /** Keeps attachments in step with the store's changes. */
  private follow(events: WatchEvent[]): void {
    for (const e of events) {
      const prev = e.prevKv?.lease ?? 0n;
      const next = e.type === EventType.Put ? e.kv.lease : 0n;
      if (prev === next) continue;
      const k = indexKey(e.kv.key);
      if (prev !== 0n) this.leases.get(prev)?.keys.delete(k);
      if (next !== 0n) this.leases.get(next)?.keys.add(k);
    }
  }
}

function leaseKey(id: bigint): Buffer {
  const b = Buffer.alloc(9);
  b[0] = LEASE_PREFIX;
  b.writeBigInt64BE(id, 1);
  return b;
}
