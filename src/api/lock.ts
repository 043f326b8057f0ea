import type { ServerUnaryCall, ServiceDefinition, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js';
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import type Long from 'long';
import { etcdserverpb, v3lockpb } from '../gen/proto';
import { EventType, WatchEvent } from '../mvcc/types';
import { Watcher, WatchSink } from '../mvcc/watch-hub';
import { EtcdError, Errors } from '../server/errors';
import { asBuffer, int64, toBigInt, toNumber } from '../server/convert';
import { CairnServer } from '../server/server';
import { method } from './codec';
import type { Caller } from '../auth/store';
import { callerOf } from './caller';
import { ErrorMapper } from './status';

// etcd's v3lock service (server/etcdserver/api/v3lock). etcd serves it by running
// clientv3/concurrency's Mutex against itself; this does the same steps against the member
// directly, with the same key layout (`<name>/<lease in hex>`) and the same requests, so
// locks taken here, by etcdctl lock, or by any Go/TS concurrency client exclude each other.
//
// Errors reach clients as etcd's do: the in-process clientv3 turns every server error into
// a plain Go error, which gRPC reports as Unknown with the same message.
//
// This file also holds the concurrency helpers the Election service shares.

const SortOrder = etcdserverpb.RangeRequest.SortOrder;
const SortTarget = etcdserverpb.RangeRequest.SortTarget;
const CompareResult = etcdserverpb.Compare.CompareResult;
const CompareTarget = etcdserverpb.Compare.CompareTarget;

export const lockService: ServiceDefinition = {
  Lock: method('/v3lockpb.Lock/Lock', v3lockpb.LockRequest, v3lockpb.LockResponse),
  Unlock: method('/v3lockpb.Lock/Unlock', v3lockpb.UnlockRequest, v3lockpb.UnlockResponse),
};

/** concurrency's defaultSessionTTL: the lease a session grants when it is given none. */
const SESSION_TTL_SECONDS = 60;

/** concurrency.ErrSessionExpired (etcd 3.5+; see waitAndCheck). */
const SESSION_EXPIRED = 'mutex: session is expired';

/** A plain error, as a Go `errors.New` reaches a gRPC client: code Unknown, the message as is. */
export class PlainError extends Error {}

/** The call was cancelled (or its deadline passed) while it waited. */
class Cancelled extends Error {}

/** etcd's statuses for these services: every error is a plain Go error by the time it returns. */
export function toUnknown(errors: ErrorMapper, e: unknown): Partial<ServiceError> {
  if (e instanceof EtcdError || e instanceof PlainError) return { code: Status.UNKNOWN, details: e.message, metadata: new Metadata() };
  return errors.toStatus(e);
}

/** A call's context: cancelled when the client goes away or its deadline passes. */
export class CallContext {
  private done = false;
  private readonly listeners = new Set<() => void>();

  /**
   * `resolveCaller`: who asks, looked up again at each use (a wait can outlast an auth
   * change): the lock and election recipes run with the caller's permissions, as etcd's do.
   */
  constructor(call: { on(ev: 'cancelled', f: () => void): unknown }, private readonly resolveCaller: () => Caller) {
    call.on('cancelled', () => this.cancel());
  }

  get caller(): Caller {
    return this.resolveCaller();
  }

  get cancelled(): boolean {
    return this.done;
  }

  cancel(): void {
    if (this.done) return;
    this.done = true;
    for (const f of [...this.listeners]) f();
    this.listeners.clear();
  }

  /** Runs `f` on cancellation; returns the unsubscriber. */
  onCancel(f: () => void): () => void {
    if (this.done) {
      f();
      return () => undefined;
    }
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  check(): void {
    if (this.done) throw new Cancelled('context canceled');
  }
}

export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.of(0); // no key is greater: to the end of the key space
}

/** The key a session with `lease` holds under `prefix` (concurrency: fmt "%s%x"). */
export function sessionKey(prefix: Buffer, lease: bigint): Buffer {
  return Buffer.concat([prefix, Buffer.from(lease.toString(16))]);
}

/**
 * concurrency.NewSession(WithLease(lease)) then Orphan(): lease 0 grants a fresh lease with
 * the default session TTL; any other value is used as it is (not checked, not kept alive).
 */
export async function sessionLease(member: CairnServer, lease: Long | number | null | undefined, caller: Caller): Promise<bigint> {
  const id = toBigInt(lease);
  if (id !== 0n) return id;
  member.auth.checkAuthenticated(caller);
  const resp = await member.leaseGrant({ TTL: SESSION_TTL_SECONDS });
  return toBigInt(resp.ID);
}

export const rev = (v: Long | number | null | undefined): number => toNumber(v);

/** clientv3's Get(prefix, WithFirstCreate()) / WithLastCreate() + WithMaxCreateRev. */
export function firstCreate(prefix: Buffer): etcdserverpb.IRangeRequest {
  return { key: prefix, rangeEnd: prefixEnd(prefix), sortOrder: SortOrder.ASCEND, sortTarget: SortTarget.CREATE, limit: 1 };
}

function lastCreateBelow(prefix: Buffer, maxCreateRevision: number): etcdserverpb.IRangeRequest {
  return { key: prefix, rangeEnd: prefixEnd(prefix), sortOrder: SortOrder.DESCEND, sortTarget: SortTarget.CREATE, limit: 1, maxCreateRevision };
}

export function createRevisionIs(key: Buffer, createRevision: number): etcdserverpb.ICompare {
  return { key, target: CompareTarget.CREATE, result: CompareResult.EQUAL, createRevision };
}

export function putOp(key: Buffer, value: Buffer, lease: bigint): etcdserverpb.IRequestOp {
  return { requestPut: { key, value, lease: int64(lease) } };
}

/**
 * Delivers the changes of [key, end) (end undefined: the one key) from `startRevision` on,
 * through the member's watch hub, until the returned stop function is called. `onCompacted`
 * runs (and the watch ends) when startRevision is below the compaction point.
 */
export function watchKeys(
  member: CairnServer,
  key: Buffer,
  end: Buffer | undefined,
  startRevision: number,
  onEvents: (events: WatchEvent[], revision: number) => void,
  onCompacted: () => void,
): () => void {
  const sink: WatchSink = {
    ready: () => !watcher.removed,
    send: (w, events, revision) => {
      if (!w.removed) onEvents(events, revision);
    },
    compacted: (w) => {
      if (w.removed) return;
      member.watchHub.remove(w);
      onCompacted();
    },
  };
  const bound = end !== undefined && end.length === 1 && end[0] === 0 ? Buffer.alloc(0) : end;
  const watcher = new Watcher({ key, end: bound, startRevision, filters: [], prevKv: false }, sink, 0);
  member.watchHub.add(watcher);
  return () => member.watchHub.remove(watcher);
}

/** The events of one watch, queued for a reader that awaits them one batch at a time. */
export class WatchQueue {
  private readonly batches: Array<{ events: WatchEvent[]; revision: number }> = [];
  private ended = false;
  private wake: (() => void) | undefined;
  private readonly stopWatch: () => void;

  constructor(member: CairnServer, key: Buffer, end: Buffer | undefined, startRevision: number) {
    this.stopWatch = watchKeys(
      member,
      key,
      end,
      startRevision,
      (events, revision) => {
        this.batches.push({ events, revision });
        this.wake?.();
      },
      () => {
        this.ended = true;
        this.wake?.();
      },
    );
  }

  /** The next batch; undefined once the watch ended (compacted). Rejects when ctx is cancelled. */
  async next(ctx: CallContext): Promise<{ events: WatchEvent[]; revision: number } | undefined> {
    while (this.batches.length === 0) {
      ctx.check();
      if (this.ended) return undefined;
      await new Promise<void>((resolve) => {
        const off = ctx.onCancel(resolve);
        this.wake = () => {
          off();
          resolve();
        };
      });
      this.wake = undefined;
    }
    return this.batches.shift();
  }

  stop(): void {
    this.stopWatch();
  }
}

/** concurrency.waitDelete: watch `key` from `revision` until an event deletes it. */
async function waitDelete(member: CairnServer, ctx: CallContext, key: Buffer, revision: number): Promise<void> {
  const q = new WatchQueue(member, key, undefined, revision);
  try {
    for (;;) {
      const batch = await q.next(ctx);
      if (batch === undefined) throw Errors.compacted();
      if (batch.events.some((e) => e.type === EventType.Delete)) return;
    }
  } finally {
    q.stop();
  }
}

/**
 * concurrency.waitDeletes: until no key under `prefix` has a create revision at most
 * `maxCreateRevision`, wait for the deletion of the newest such key. The last read's header.
 */
export async function waitDeletes(member: CairnServer, ctx: CallContext, prefix: Buffer, maxCreateRevision: number): Promise<number> {
  for (;;) {
    ctx.check();
    const resp = await member.range(lastCreateBelow(prefix, maxCreateRevision), ctx.caller);
    const revision = rev(resp.header?.revision);
    const kvs = resp.kvs ?? [];
    if (kvs.length === 0) return revision;
    await waitDelete(member, ctx, asBuffer(kvs[0].key), revision);
  }
}

export function isCancelled(e: unknown): boolean {
  return e instanceof Cancelled;
}

/** A unary handler whose errors are reported as etcd's v3lock/v3election report them. */
export function handler<Req, Res extends { header?: etcdserverpb.IResponseHeader | null }>(
  member: CairnServer,
  errors: ErrorMapper,
  run: (r: Req, ctx: CallContext) => Promise<Res>,
) {
  return (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
    let ctx: CallContext;
    try {
      ctx = new CallContext(call, () => callerOf(member, call));
      void ctx.caller; // an invalid token fails the call before it starts
    } catch (e) {
      callback(toUnknown(errors, e));
      return;
    }
    run(call.request, ctx).then(
      (resp) => {
        resp.header = member.header(rev(resp.header?.revision) || undefined);
        callback(null, resp);
      },
      (e) => callback(isCancelled(e) ? { code: Status.CANCELLED, details: 'context canceled', metadata: new Metadata() } : toUnknown(errors, e)),
    );
  };
}

export function lockImplementation(member: CairnServer, errors: ErrorMapper): UntypedServiceImplementation {
  return {
    Lock: handler(member, errors, async (r: v3lockpb.LockRequest, ctx): Promise<v3lockpb.ILockResponse> => {
      const lease = await sessionLease(member, r.lease, ctx.caller);
      const prefix = Buffer.concat([asBuffer(r.name), Buffer.from('/')]);
      const key = sessionKey(prefix, lease);
      // Mutex.tryAcquire: take a place in the queue (or find the one this lease holds) and
      // read the current owner in the same transaction.
      const getOwner: etcdserverpb.IRequestOp = { requestRange: firstCreate(prefix) };
      const txn = await member.txn(
        {
          compare: [createRevisionIs(key, 0)],
          success: [putOp(key, Buffer.alloc(0), lease), getOwner],
          failure: [{ requestRange: { key } }, getOwner],
        },
        ctx.caller,
      );
      const txnRevision = rev(txn.header?.revision);
      const responses = txn.responses ?? [];
      const myRev = txn.succeeded ? txnRevision : rev(responses[0].responseRange?.kvs?.[0]?.createRevision);
      const owner = responses[1].responseRange?.kvs ?? [];
      if (owner.length === 0 || rev(owner[0].createRevision) === myRev) return { header: { revision: txnRevision }, key };
      let revision: number;
      try {
        await waitDeletes(member, ctx, prefix, myRev - 1);
        // etcd 3.5's Mutex.Lock (not 3.4's): a waiter whose lease expired meanwhile has lost
        // its key, and must not be told it holds the lock.
        const mine = await member.range({ key }, ctx.caller);
        if ((mine.kvs ?? []).length === 0) throw new PlainError(SESSION_EXPIRED);
        revision = rev(mine.header?.revision);
      } catch (e) {
        // Mutex.Lock releases its place in the queue when the wait fails.
        if (!(e instanceof PlainError)) await member.deleteRange({ key }, ctx.caller).catch(() => undefined);
        throw e;
      }
      return { header: { revision }, key };
    }),
    Unlock: handler(member, errors, async (r: v3lockpb.UnlockRequest, ctx): Promise<v3lockpb.IUnlockResponse> => {
      const key = asBuffer(r.key);
      if (key.length === 0) throw Errors.emptyKey();
      const resp = await member.deleteRange({ key }, ctx.caller);
      return { header: resp.header };
    }),
  };
}
