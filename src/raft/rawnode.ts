// The boundary between the algorithm and the world: RawNode wraps Raft and hands the
// caller its work as a Ready, acknowledged by advance().
//
// How a server drives it (one loop, single-threaded):
//
//   on timer:            node.tick()
//   on peer message:     node.step(msg)
//   on client write:     node.propose(data) / node.proposeConfChange(cc)
//   on linearizable read node.readIndex(ctx)     -> later a ReadState with ctx
//   then, while node.hasReady():
//     const rd = node.ready();
//     1. persist, atomically and durably (fdatasync if rd.mustSync):
//        rd.snapshot (if any), rd.entries (replacing any stored suffix from
//        rd.entries[0].index on), rd.hardState (if any)
//     2. send rd.messages (only after step 1: a vote or an append acknowledgement
//        must never be sent before what it promises is on disk)
//     3. install rd.snapshot in the state machine; apply rd.committedEntries in order;
//        for a ConfChange entry call node.applyConfChange(decodeConfChange(e.data))
//        and keep the returned ConfState for the next snapshot
//     4. serve reads whose ReadState.index <= applied index
//     5. node.advance(rd)
//
// The leader's own entries count towards commitment as soon as they are appended;
// that is safe only because step 1 happens before step 3 and before any later Ready.

import { assert } from './assert';
import { encodeConfChange } from './codec';
import { ErrProposalDropped, ErrReadIndexDropped, ErrStepLocalMsg } from './errors';
import type { Progress } from './progress';
import { type Config, Raft } from './raft';
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  None,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
  emptyBytes,
  hardStateEqual,
  isLocalMessage,
  isResponseMessage,
  makeMessage,
} from './types';

export interface Ready {
  /** Set when leader or role changed. Not persisted. */
  softState: SoftState | null;
  /** Set when term, vote or commit changed; persist with `entries`. */
  hardState: HardState | null;
  readStates: ReadState[];
  /** Entries to persist before sending `messages`. */
  entries: Entry[];
  /** Snapshot to persist and install. */
  snapshot: Snapshot | null;
  /** Committed entries to apply, in order. */
  committedEntries: Entry[];
  messages: Message[];
  /** Whether the writes of this Ready must be fsynced (a vote, a term or entries). */
  mustSync: boolean;
}

export enum SnapshotStatus {
  Finish = 0,
  Failure = 1,
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  /** The leader's view of each member; empty unless leader. */
  progress: Map<NodeId, Progress>;
  leadTransferee: NodeId;
}

export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** A Ready was handed out and not yet advanced. */
  private readyOutstanding = false;
  /** The last entry handed out by takeDurableCommitted while a Ready is outstanding (0: none). */
  private earlyApplied = 0;
  /** The last committed entry of the outstanding Ready (or the applied index when it has none). */
  private outstandingApplied = 0;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /**
   * Start a brand new cluster: the initial members become ConfChange entries 1..n of
   * term 1, committed. Nodes added later receive them (or a snapshot) like any entry,
   * so every member derives the same configuration. Storage must be empty.
   */
  bootstrap(peers: NodeId[]): void {
    assert(peers.length > 0, 'must provide at least one peer to bootstrap');
    const r = this.raft;
    assert(r.raftLog.lastIndex() === 0 && r.term === 0, 'can only bootstrap an empty storage');
    r.becomeFollower(1, None);
    const ents: Entry[] = peers.map((id, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: emptyBytes }),
    }));
    r.raftLog.append(ents);
    // Committed by fiat (every member starts with them); the application applies them
    // again from committedEntries, which is idempotent.
    r.raftLog.committed = ents.length;
    for (const id of peers) r.applyConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: emptyBytes });
  }

  tick(): void {
    this.raft.tick();
  }

  /** Campaign now (tests, or a server asked to take leadership). */
  campaign(): void {
    this.raft.step(makeMessage({ type: MessageType.Hup }));
  }

  /** Propose data. Throws ErrProposalDropped if it was not accepted; acceptance does not mean commitment. */
  propose(data: Uint8Array): void {
    this.raft.step(makeMessage({ type: MessageType.Prop, from: this.raft.id, entries: [{ term: 0, index: 0, type: EntryType.Normal, data }] }));
  }

  /** Propose several entries in one message (batched proposals). */
  proposeBatch(datas: Uint8Array[]): void {
    const entries = datas.map((data) => ({ term: 0, index: 0, type: EntryType.Normal, data }));
    this.raft.step(makeMessage({ type: MessageType.Prop, from: this.raft.id, entries }));
  }

  proposeConfChange(cc: ConfChange): void {
    const data = encodeConfChange(cc);
    this.raft.step(makeMessage({ type: MessageType.Prop, from: this.raft.id, entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data }] }));
  }

  /** Apply a committed ConfChange; returns the new membership for the next snapshot. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Feed a message received from a peer. */
  step(m: Message): void {
    if (isLocalMessage(m.type)) throw ErrStepLocalMsg;
    // Answers from a peer we no longer track (removed) are meaningless.
    if (isResponseMessage(m.type) && !this.raft.trk.progress.has(m.from)) return;
    try {
      this.raft.step(m);
    } catch (e) {
      // A forwarded proposal or read that cannot proceed here is dropped; the
      // requester on the other node times out and retries.
      if (e === ErrProposalDropped || e === ErrReadIndexDropped) return;
      throw e;
    }
  }

  /** Request a linearizable read; a ReadState with this context arrives in a later Ready. */
  readIndex(context: Uint8Array): void {
    this.raft.step(makeMessage({ type: MessageType.ReadIndex, context }));
  }

  /** Ask the leader to hand leadership to `transferee`. */
  transferLeader(transferee: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.TransferLeader, from: transferee }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(makeMessage({ type: MessageType.Unreachable, from: id }));
  }

  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(makeMessage({ type: MessageType.SnapStatus, from: id, reject: status === SnapshotStatus.Failure }));
  }

  hasReady(): boolean {
    // Called in every turn of the caller's loop: compare fields, allocate nothing.
    const r = this.raft;
    r.sendPendingAppends();
    if (r.lead !== this.prevSoftState.lead || r.state !== this.prevSoftState.raftState) return true;
    const prev = this.prevHardState;
    if (r.term !== prev.term || r.vote !== prev.vote || r.raftLog.committed !== prev.commit) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstableEntries().length > 0 || r.raftLog.hasNextEnts()) return true;
    return r.readStates.length > 0;
  }

  ready(): Ready {
    assert(!this.readyOutstanding, 'ready() called again before advance()');
    const r = this.raft;
    r.sendPendingAppends();
    const ss = r.softState();
    const hs = r.hardState();
    const softChanged = ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState;
    const hardChanged = !hardStateEqual(hs, this.prevHardState);
    const entries = r.raftLog.unstableEntries().slice();
    const rd: Ready = {
      softState: softChanged ? ss : null,
      hardState: hardChanged ? hs : null,
      readStates: r.readStates,
      entries,
      snapshot: r.raftLog.hasPendingSnapshot() ? r.raftLog.unstable.snapshot : null,
      committedEntries: r.raftLog.nextEnts(),
      messages: r.msgs,
      mustSync: entries.length > 0 || (hardChanged && (hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote)),
    };
    if (softChanged) this.prevSoftState = ss;
    r.msgs = [];
    r.readStates = [];
    this.readyOutstanding = true;
    const n = rd.committedEntries.length;
    this.outstandingApplied = n > 0 ? rd.committedEntries[n - 1].index : r.raftLog.applied;
    this.earlyApplied = 0;
    return rd;
  }

  // While a Ready is outstanding (its fdatasync running), a caller may take out what does
  // not depend on that Ready's disk write, instead of holding it for the next Ready:

  /** Takes the pending messages `which` accepts out of the next Ready (messages that promise nothing about this node's log or vote). */
  takeMessages(which: (m: Message) => boolean): Message[] {
    const r = this.raft;
    if (r.msgs.length === 0) return [];
    const taken: Message[] = [];
    const kept: Message[] = [];
    for (const m of r.msgs) (which(m) ? taken : kept).push(m);
    r.msgs = kept;
    return taken;
  }

  /** Takes the ReadIndex answers out of the next Ready. */
  takeReadStates(): ReadState[] {
    const r = this.raft;
    const states = r.readStates;
    r.readStates = [];
    return states;
  }

  /**
   * With a Ready outstanding whose committed entries the caller has already applied:
   * committed entries after them that were durable here before that Ready (so need nothing
   * from its fdatasync), in order, stopping before a ConfChange (applied with its Ready,
   * after advance). The caller applies them now; advance() counts them applied. Empty
   * when there is no outstanding Ready or a snapshot is pending.
   */
  takeDurableCommitted(): Entry[] {
    if (!this.readyOutstanding) return [];
    const log = this.raft.raftLog;
    if (log.hasPendingSnapshot()) return [];
    const lo = Math.max(this.outstandingApplied, this.earlyApplied, log.applied) + 1;
    // Entries before the unstable part were reported stable by an earlier advance().
    const hi = Math.min(log.committed, log.unstable.offset - 1);
    if (hi < lo || lo < log.firstIndex()) return [];
    const ents = log.slice(lo, hi + 1, log.maxNextEntsSize);
    let n = 0;
    while (n < ents.length && ents[n].type !== EntryType.ConfChange) n++;
    if (n === 0) return [];
    const out = n === ents.length ? ents : ents.slice(0, n);
    this.earlyApplied = out[out.length - 1].index;
    this.raft.reduceUncommittedSize(out);
    return out;
  }

  /** With Config.leaderAcksOnPersist: entries up to `index` (the last of term `term`) are durable here. */
  persisted(index: number, term: number): void {
    this.raft.persisted(index, term);
  }

  /** The Ready was persisted, sent and applied. */
  advance(rd: Ready): void {
    assert(this.readyOutstanding, 'advance() without ready()');
    this.readyOutstanding = false;
    const r = this.raft;
    if (rd.hardState) this.prevHardState = rd.hardState;
    r.reduceUncommittedSize(rd.committedEntries);
    const n = rd.committedEntries.length;
    if (this.earlyApplied > 0) r.appliedTo(this.earlyApplied);
    else if (n > 0) r.appliedTo(rd.committedEntries[n - 1].index);
    else if (rd.snapshot) r.appliedTo(rd.snapshot.metadata.index);
    this.earlyApplied = 0;
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      r.raftLog.stableTo(last.index, last.term);
    }
    if (rd.snapshot) r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
  }

  status(): Status {
    const r = this.raft;
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      progress: r.state === StateType.Leader ? new Map(r.trk.progress) : new Map(),
      leadTransferee: r.leadTransferee,
    };
  }
}
