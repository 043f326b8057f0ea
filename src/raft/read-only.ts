// Linearizable reads without log writes (§6.4 of Ongaro's dissertation, "ReadIndex").
//
// The leader records its commit index when a read arrives, then confirms it is still
// the leader by hearing from a quorum in a heartbeat round that started after the
// read arrived. Reads are batched into rounds: at most one round is in flight; reads
// arriving meanwhile wait in `queued` and share the next round. A round's id travels
// in the heartbeat's context and comes back in the responses; every regular heartbeat
// repeats the id of the round in flight, so a lost round is retried.

import { assert } from './assert';
import type { Message, NodeId } from './types';

/** Bound on reads waiting for a round; beyond it, new reads are dropped. */
export const maxPendingReadIndexRequests = 4096;

export interface ReadIndexRequest {
  /** The leader's commit index when the request arrived. */
  index: number;
  req: Message;
}

interface Round {
  ctx: Uint8Array;
  acks: Set<NodeId>;
  requests: ReadIndexRequest[];
}

export function encodeRoundId(id: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint32(0, Math.floor(id / 0x100000000));
  v.setUint32(4, id >>> 0);
  return b;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class ReadOnly {
  private inflight: Round | null = null;
  private queued: ReadIndexRequest[] = [];

  /** @param nextRoundId a counter that survives leader changes, so round ids never repeat on a node. */
  constructor(private readonly nextRoundId: () => number) {}

  pendingCount(): number {
    return this.queued.length + (this.inflight ? this.inflight.requests.length : 0);
  }

  /**
   * Queue a read. Returns the context of a new round to broadcast, or null if the
   * read waits for the next round (or was dropped when `false` is returned instead).
   */
  addRequest(index: number, req: Message, self: NodeId): Uint8Array | null | false {
    if (this.pendingCount() >= maxPendingReadIndexRequests) return false;
    if (this.inflight === null) return this.startRound([{ index, req }], self);
    this.queued.push({ index, req });
    return null;
  }

  private startRound(requests: ReadIndexRequest[], self: NodeId): Uint8Array {
    const ctx = encodeRoundId(this.nextRoundId());
    this.inflight = { ctx, acks: new Set([self]), requests };
    return ctx;
  }

  /** A heartbeat response carried `ctx`. Returns the acks of the round, or null if it is not the round in flight. */
  recvAck(from: NodeId, ctx: Uint8Array): ReadonlySet<NodeId> | null {
    if (this.inflight === null || !sameBytes(this.inflight.ctx, ctx)) return null;
    this.inflight.acks.add(from);
    return this.inflight.acks;
  }

  /** The round in flight was confirmed by a quorum: release its reads, start the next round if reads are queued. */
  advance(self: NodeId): { released: ReadIndexRequest[]; nextCtx: Uint8Array | null } {
    assert(this.inflight !== null, 'read-only advance without a round in flight');
    const released = this.inflight.requests;
    this.inflight = null;
    let nextCtx: Uint8Array | null = null;
    if (this.queued.length > 0) {
      const q = this.queued;
      this.queued = [];
      nextCtx = this.startRound(q, self);
    }
    return { released, nextCtx };
  }

  /** Context of the round in flight, carried by every heartbeat until it completes. */
  lastPendingRequestCtx(): Uint8Array | null {
    return this.inflight ? this.inflight.ctx : null;
  }
}
