import type { ServerWritableStream, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { mvccpb, v3electionpb } from '../gen/proto';
import { EventType } from '../mvcc/types';
import { asBuffer, int64, kvToWire } from '../server/convert';
import { CairnServer } from '../server/server';
import { method } from './codec';
import {
  CallContext,
  PlainError,
  WatchQueue,
  createRevisionIs,
  firstCreate,
  handler,
  isCancelled,
  prefixEnd,
  putOp,
  rev,
  sessionKey,
  sessionLease,
  waitDeletes,
} from './lock';
import type { Caller } from '../auth/store';
import { callerOf } from './caller';
import { ErrorMapper } from './status';

// etcd's v3election service (server/etcdserver/api/v3election), which runs
// clientv3/concurrency's Election against the server itself. The same steps run here against
// the member: candidates are the keys `<name>/<lease in hex>`, the leader is the one with the
// lowest create revision, so Go/TS concurrency clients and etcdctl elect take part in the
// same elections. Errors are plain Go errors in etcd (gRPC code Unknown), and so here.

const pb = v3electionpb;

export const electionService: ServiceDefinition = {
  Campaign: method('/v3electionpb.Election/Campaign', pb.CampaignRequest, pb.CampaignResponse),
  Proclaim: method('/v3electionpb.Election/Proclaim', pb.ProclaimRequest, pb.ProclaimResponse),
  Leader: method('/v3electionpb.Election/Leader', pb.LeaderRequest, pb.LeaderResponse),
  Observe: method('/v3electionpb.Election/Observe', pb.LeaderRequest, pb.LeaderResponse, { response: true }),
  Resign: method('/v3electionpb.Election/Resign', pb.ResignRequest, pb.ResignResponse),
};

const errMissingLeaderKey = (): PlainError => new PlainError('"leader" field must be provided');
const errNotLeader = (): PlainError => new PlainError('election: not leader');
const errNoLeader = (): PlainError => new PlainError('election: no leader');

const prefixOf = (name: Uint8Array | null | undefined): Buffer => Buffer.concat([asBuffer(name), Buffer.from('/')]);

export function electionImplementation(member: CairnServer, errors: ErrorMapper): UntypedServiceImplementation {
  /** Election.Proclaim: rewrite the leader key's value while its create revision is still ours. */
  async function proclaim(key: Buffer, createRevision: number, lease: bigint, value: Buffer, caller: Caller): Promise<number> {
    const txn = await member.txn({ compare: [createRevisionIs(key, createRevision)], success: [putOp(key, value, lease)] }, caller);
    if (!txn.succeeded) throw errNotLeader();
    return rev(txn.header?.revision);
  }

  /** Election.Resign: delete the leader key if its create revision is still ours. */
  async function resign(key: Buffer, createRevision: number, caller: Caller): Promise<number> {
    const txn = await member.txn({ compare: [createRevisionIs(key, createRevision)], success: [{ requestDeleteRange: { key } }] }, caller);
    return rev(txn.header?.revision);
  }

  return {
    Campaign: handler(member, errors, async (r: v3electionpb.CampaignRequest, ctx): Promise<v3electionpb.ICampaignResponse> => {
      const lease = await sessionLease(member, r.lease, ctx.caller);
      const prefix = prefixOf(r.name);
      const key = sessionKey(prefix, lease);
      const value = asBuffer(r.value);
      const txn = await member.txn(
        {
          compare: [createRevisionIs(key, 0)],
          success: [putOp(key, value, lease)],
          failure: [{ requestRange: { key } }],
        },
        ctx.caller,
      );
      const revision = rev(txn.header?.revision);
      let leaderRev = revision;
      if (!txn.succeeded) {
        // This lease already campaigns: keep its place, and proclaim the new value.
        const kv = txn.responses?.[0]?.responseRange?.kvs?.[0];
        leaderRev = rev(kv?.createRevision);
        if (!asBuffer(kv?.value).equals(value)) {
          try {
            await proclaim(key, leaderRev, lease, value, ctx.caller);
          } catch (e) {
            await resign(key, leaderRev, ctx.caller).catch(() => undefined);
            throw e;
          }
        }
      }
      try {
        await waitDeletes(member, ctx, prefix, leaderRev - 1);
      } catch (e) {
        // Election.Campaign withdraws the candidacy only when its context ended.
        if (isCancelled(e)) await resign(key, leaderRev, ctx.caller).catch(() => undefined);
        throw e;
      }
      return { header: { revision }, leader: { name: asBuffer(r.name), key, rev: leaderRev, lease: int64(lease) } };
    }),

    Proclaim: handler(member, errors, async (r: v3electionpb.ProclaimRequest, ctx): Promise<v3electionpb.IProclaimResponse> => {
      const leader = r.leader;
      if (!leader) throw errMissingLeaderKey();
      const lease = await sessionLease(member, leader.lease, ctx.caller);
      const revision = await proclaim(asBuffer(leader.key), rev(leader.rev), lease, asBuffer(r.value), ctx.caller);
      return { header: { revision } };
    }),

    Resign: handler(member, errors, async (r: v3electionpb.ResignRequest, ctx): Promise<v3electionpb.IResignResponse> => {
      const leader = r.leader;
      if (!leader) throw errMissingLeaderKey();
      await sessionLease(member, leader.lease, ctx.caller); // etcd's session grants a (never used) lease for lease 0
      const revision = await resign(asBuffer(leader.key), rev(leader.rev), ctx.caller);
      return { header: { revision } };
    }),

    Leader: handler(member, errors, async (r: v3electionpb.LeaderRequest, ctx): Promise<v3electionpb.ILeaderResponse> => {
      const resp = await member.range(firstCreate(prefixOf(r.name)), ctx.caller);
      const kv = resp.kvs?.[0];
      if (kv === undefined) throw errNoLeader();
      return { header: { revision: rev(resp.header?.revision) }, kv };
    }),

    Observe: (call: ServerWritableStream<v3electionpb.LeaderRequest, v3electionpb.ILeaderResponse>) => {
      let ctx: CallContext;
      try {
        ctx = new CallContext(call, () => callerOf(member, call));
        void ctx.caller; // an invalid token fails the call before it starts
      } catch (e) {
        call.emit('error', errors.toStatus(e));
        return;
      }
      observe(member, ctx, prefixOf(call.request.name), (revision, kv) => {
        if (!ctx.cancelled) call.write({ header: member.header(revision), kv });
      }).then(
        () => {
          if (!ctx.cancelled) call.end();
        },
        (e) => {
          if (ctx.cancelled) return;
          // Election.observe ends its channel on any failure, and Observe then returns nil.
          if (!isCancelled(e)) errors.toStatus(e); // logs what is not an etcd error
          call.end();
        },
      );
    },
  };
}

/**
 * concurrency.Election.observe: the current leader (or, when there is none, the first key
 * put under the prefix), then every put of that key, until it is deleted; then again.
 */
async function observe(
  member: CairnServer,
  ctx: CallContext,
  prefix: Buffer,
  send: (revision: number, kv: mvccpb.IKeyValue) => void,
): Promise<void> {
  for (;;) {
    ctx.check();
    const resp = await member.range(firstCreate(prefix), ctx.caller);
    let kv: mvccpb.IKeyValue | undefined = resp.kvs?.[0];
    let revision = rev(resp.header?.revision);
    if (kv === undefined) {
      // Wait for the first key put under the prefix (a delete would make observe spin).
      const q = new WatchQueue(member, prefix, prefixEnd(prefix), revision);
      try {
        while (kv === undefined) {
          const batch = await q.next(ctx);
          if (batch === undefined) return;
          const put = batch.events.find((e) => e.type === EventType.Put);
          if (put) {
            kv = kvToWire(put.kv);
            revision = put.kv.modRevision;
          }
        }
      } finally {
        q.stop();
      }
    }
    send(revision, kv);
    const q = new WatchQueue(member, asBuffer(kv.key), undefined, revision + 1);
    try {
      let deleted = false;
      while (!deleted) {
        const batch = await q.next(ctx);
        if (batch === undefined) return;
        for (const e of batch.events) {
          if (e.type === EventType.Delete) {
            deleted = true;
            break;
          }
          send(batch.revision, kvToWire(e.kv));
        }
      }
    } finally {
      q.stop();
    }
  }
}
