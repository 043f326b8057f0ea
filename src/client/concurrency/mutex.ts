import type { Client } from '../client';
import { toBuf, type KeyLike, type ResponseHeader } from '../convert';
import { compare, op, type Comparison, type TxnResult } from '../kv';
import type { CallOptions } from '../pool';
import { ErrLockReleased, ErrLocked, ErrSessionExpired } from './errors';
import { waitDeletes } from './key';
import type { Session } from './session';

// etcd's concurrency.Mutex, with etcd's exact keys and requests so that Go programs,
// `etcdctl lock` and this client exclude one another:
//   key = <prefix>/<session lease ID in lowercase hex>, value '', attached to the lease;
//   Txn(If create_revision(key) = 0, Then put(key) + get-first-created(prefix),
//       Else get(key) + get-first-created(prefix));
//   the holder is the key with the lowest create revision; a waiter waits until every key
//   with a lower create revision is deleted (watching the newest of them each time).

export interface LockOptions {
  /** Give up waiting (the waiter's key is removed again) and reject with CanceledError. */
  signal?: AbortSignal;
}

export class Mutex {
  /** etcd's pfx: the prefix with '/' appended. */
  readonly pfx: Buffer;
  private myKey: Buffer | null = null;
  private myRev = -1;
  private hdr: ResponseHeader | null = null;

  constructor(
    readonly session: Session,
    prefix: KeyLike,
  ) {
    this.pfx = Buffer.concat([toBuf(prefix), Buffer.from('/')]);
  }

  private get client(): Client {
    return this.session.client;
  }

  private async tryAcquire(opts: CallOptions): Promise<TxnResult> {
    const lease = this.session.lease;
    const key = Buffer.concat([this.pfx, Buffer.from(lease.toString(16))]);
    this.myKey = key;
    const getOwner = op.get({ key: this.pfx, prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 });
    const r = await this.client
      .txn()
      .if(compare.createRevision(key, '=', 0))
      .then(op.put(key, '', { lease }), getOwner)
      .else(op.get(key), getOwner)
      .commit(opts);
    this.myRev = r.revision;
    if (!r.succeeded) {
      const g = r.responses[0];
      if (g.type === 'get' && g.kvs.length > 0) this.myRev = g.kvs[0].createRevision;
    }
    return r;
  }

  private ownsFrom(r: TxnResult): boolean {
    const o = r.responses[1];
    const kvs = o !== undefined && o.type === 'get' ? o.kvs : [];
    return kvs.length === 0 || kvs[0].createRevision === this.myRev;
  }

  /**
   * Acquire the lock, waiting for every earlier holder / waiter to go (etcd's Lock). On
   * abort or error while waiting, the waiter's key is deleted again. Rejects with
   * ErrSessionExpired if the session's lease is lost before the lock is acquired.
   */
  async lock(opts: LockOptions = {}): Promise<void> {
    const { signal } = opts;
    const r = await this.tryAcquire({ signal });
    if (this.ownsFrom(r)) {
      this.hdr = r.header;
      return;
    }
    try {
      // etcd has a TODO to stop early when the session ends; this does (and then reports it).
      await waitDeletes(this.client, this.pfx, this.myRev - 1, signal, this.session.done);
      if (this.session.isDone) throw new ErrSessionExpired();
    } catch (e) {
      await this.unlock().catch(() => undefined);
      throw e;
    }
    // Make sure the session is not expired and our key still exists.
    let g;
    try {
      g = await this.client.get(this.myKey as Buffer, { signal });
    } catch (e) {
      await this.unlock().catch(() => undefined);
      throw e;
    }
    if (g.kvs.length === 0 || g.kvs[0].createRevision !== this.myRev) throw new ErrSessionExpired();
    this.hdr = g.header;
  }

  /** Acquire the lock if nobody holds it, else reject with ErrLocked at once (etcd's TryLock). */
  async tryLock(opts: CallOptions = {}): Promise<void> {
    const r = await this.tryAcquire(opts);
    if (this.ownsFrom(r)) {
      this.hdr = r.header;
      return;
    }
    await this.client.delete(this.myKey as Buffer, opts);
    this.myKey = null;
    this.myRev = -1;
    throw new ErrLocked();
  }

  /** Release the lock (delete the key). Rejects with ErrLockReleased if not held. */
  async unlock(opts: CallOptions = {}): Promise<void> {
    if (this.myKey === null || this.myRev <= 0) throw new ErrLockReleased();
    await this.client.delete(this.myKey, opts);
    this.myKey = null;
    this.myRev = -1;
  }

  /** A comparison that holds only while this mutex owns the lock (etcd's IsOwner), for guarded txns. */
  isOwner(): Comparison {
    return compare.createRevision(this.myKey ?? Buffer.from([0]), '=', this.myRev);
  }

  /** The lock key (etcd's Key()), or null when not locked / waiting. */
  key(): string | null {
    return this.myKey === null ? null : this.myKey.toString('utf8');
  }

  /** The lock key's create revision, or -1. */
  get revision(): number {
    return this.myRev;
  }

  /** The header of the response that acquired the lock (etcd's Header()). */
  header(): ResponseHeader | null {
    return this.hdr;
  }
}

/** etcd's concurrency.NewMutex. */
export function newMutex(session: Session, prefix: KeyLike): Mutex {
  return new Mutex(session, prefix);
}
