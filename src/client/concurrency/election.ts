import type { Client } from '../client';
import { toBuf, type KeyLike, type KeyValue, type ResponseHeader } from '../convert';
import { compare, op } from '../kv';
import type { CallOptions } from '../pool';
import { ErrElectionNoLeader, ErrElectionNotLeader } from './errors';
import { firstCreated, waitDeletes } from './key';
import type { Session } from './session';

// etcd's concurrency.Election with etcd's keys and requests (compatible with Go programs,
// `etcdctl elect` and `etcdctl elect -l`): a candidate's key is
// <prefix>/<lease ID in lowercase hex>, its value the proposal; the leader is the key with
// the lowest create revision; a candidate waits until every older key is deleted.

/** One leader observation: the leader's key-value pair (its value is the proclaimed value). */
export interface LeaderObservation {
  header: ResponseHeader;
  kv: KeyValue;
  /** kv.key as UTF-8 */
  key: string;
  /** kv.value as UTF-8 */
  value: string;
}

function observation(header: ResponseHeader, kv: KeyValue): LeaderObservation {
  return { header, kv, key: kv.keyString(), value: kv.valueString() };
}

export class Election {
  /** etcd's keyPrefix: the prefix with '/' appended. */
  readonly pfx: Buffer;
  private leaderKey: Buffer | null = null;
  private leaderRev = -1;
  private leaderSession: Session | null = null;
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

  /**
   * Put this session's candidacy with `value` and wait until elected (etcd's Campaign). If the
   * session already campaigns, its key is reused (and re-proclaimed if the value differs).
   * On abort the candidacy is resigned.
   */
  async campaign(value: KeyLike, opts: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = opts;
    const s = this.session;
    const k = Buffer.concat([this.pfx, Buffer.from(s.lease.toString(16))]);
    const val = toBuf(value);
    const r = await this.client
      .txn()
      .if(compare.createRevision(k, '=', 0))
      .then(op.put(k, val, { lease: s.lease }))
      .else(op.get(k))
      .commit({ signal });
    this.leaderKey = k;
    this.leaderRev = r.revision;
    this.leaderSession = s;
    if (!r.succeeded) {
      const g = r.responses[0];
      if (g.type === 'get' && g.kvs.length > 0) {
        this.leaderRev = g.kvs[0].createRevision;
        if (!g.kvs[0].value.equals(val)) {
          try {
            await this.proclaim(val, { signal });
          } catch (e) {
            await this.resign().catch(() => undefined);
            throw e;
          }
        }
      }
    }
    try {
      await waitDeletes(this.client, this.pfx, this.leaderRev - 1, signal);
    } catch (e) {
      if (signal?.aborted) await this.resign().catch(() => undefined);
      else this.leaderSession = null;
      throw e;
    }
    this.hdr = r.header;
  }

  /** Change the leader's value without a new election (etcd's Proclaim); ErrElectionNotLeader unless leading. */
  async proclaim(value: KeyLike, opts: CallOptions = {}): Promise<void> {
    if (this.leaderSession === null || this.leaderKey === null) throw new ErrElectionNotLeader();
    const r = await this.client
      .txn()
      .if(compare.createRevision(this.leaderKey, '=', this.leaderRev))
      .then(op.put(this.leaderKey, value, { lease: this.leaderSession.lease }))
      .commit(opts);
    if (!r.succeeded) {
      this.leaderKey = null;
      throw new ErrElectionNotLeader();
    }
    this.hdr = r.header;
  }

  /** Give up leadership or candidacy (etcd's Resign); does nothing if not campaigning. */
  async resign(opts: CallOptions = {}): Promise<void> {
    if (this.leaderSession === null) return;
    const key = this.leaderKey;
    this.leaderKey = null;
    this.leaderSession = null;
    if (key === null) return;
    const r = await this.client.txn().if(compare.createRevision(key, '=', this.leaderRev)).then(op.delete(key)).commit(opts);
    this.hdr = r.header;
  }

  /** The current leader's key-value pair (etcd's Leader); ErrElectionNoLeader if nobody campaigns. */
  async leader(opts: CallOptions = {}): Promise<LeaderObservation> {
    const r = await this.client.get({ key: this.pfx, prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 }, opts);
    if (r.kvs.length === 0) throw new ErrElectionNoLeader();
    return observation(r.header, r.kvs[0]);
  }

  /**
   * The leader, then every change of leader or of its value (etcd's Observe): when there is
   * no leader it waits for the first candidate; it follows the leader's key until it is
   * deleted and then reads the new leader. Ends when the signal aborts or the consumer stops.
   */
  observe(opts: { signal?: AbortSignal } = {}): AsyncIterableIterator<LeaderObservation> {
    return observeElection(this.client, this.pfx, opts.signal);
  }

  /** This election's key while campaigning / leading (etcd's Key()), or null. */
  key(): string | null {
    return this.leaderKey === null ? null : this.leaderKey.toString('utf8');
  }

  /** The create revision of this election's key (etcd's Rev()). */
  get revision(): number {
    return this.leaderRev;
  }

  /** etcd's Header(). */
  header(): ResponseHeader | null {
    return this.hdr;
  }
}

async function* observeElection(client: Client, pfx: Buffer, signal?: AbortSignal): AsyncGenerator<LeaderObservation> {
  const aborted = (): boolean => signal?.aborted === true;
  const watchUntil = (w: { cancel(): Promise<void> }): (() => void) => {
    if (!signal) return () => undefined;
    const fn = (): void => void w.cancel();
    signal.addEventListener('abort', fn, { once: true });
    return () => signal.removeEventListener('abort', fn);
  };
  try {
    for (;;) {
      if (aborted()) return;
      const first = await firstCreated(client, pfx, signal);
      let kv = first.kv;
      let hdr: ResponseHeader | null = null;
      if (kv === null) {
        // No leader: wait for the first put under the prefix (deletes are ignored).
        const w = client.watch({ key: pfx, prefix: true, startRevision: first.header.revision });
        const detach = watchUntil(w);
        try {
          for await (const b of w) {
            const put = b.events.find((e) => e.type === 'put');
            if (put) {
              kv = put.kv;
              hdr = { ...b.header, revision: put.kv.modRevision };
              break;
            }
          }
        } finally {
          detach();
          await w.cancel();
        }
        if (kv === null || hdr === null) {
          if (aborted()) return;
          throw new Error('election: observe watch ended');
        }
      } else {
        hdr = first.header;
      }
      yield observation(hdr, kv);
      // Follow the leader's key: each put is a new value; its delete ends this leader.
      const w = client.watch({ key: kv.key, startRevision: hdr.revision + 1 });
      const detach = watchUntil(w);
      let deleted = false;
      try {
        outer: for await (const b of w) {
          for (const e of b.events) {
            if (e.type === 'delete') {
              deleted = true;
              break outer;
            }
            yield observation(b.header, e.kv);
          }
        }
      } finally {
        detach();
        await w.cancel();
      }
      if (!deleted) {
        if (aborted()) return;
        throw new Error('election: observe watch ended');
      }
    }
  } catch (e) {
    if (aborted()) return;
    throw e;
  }
}

/** etcd's concurrency.NewElection. */
export function newElection(session: Session, prefix: KeyLike): Election {
  return new Election(session, prefix);
}
