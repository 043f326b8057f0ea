// The Raft state machine: elections (§5.2, with pre-vote and check-quorum from §9.6 of
// Ongaro's dissertation), log replication (§5.3), the commitment rule (§5.4.2),
// leadership transfer (§3.10), ReadIndex (§6.4) and single-node membership changes.
//
// No I/O, no clock, no randomness but `config.random`. Inputs: tick(), step(message).
// Outputs accumulate in `msgs`, `readStates` and the log's unstable part; RawNode
// packages them into a Ready. Structure and names follow etcd-io/raft's raft.go.

import { assert, assertIndex } from './assert';
import { applyChange, restoreConfig, validateConfChange } from './confchange';
import { decodeConfChange } from './codec';
import { ErrProposalDropped, ErrReadIndexDropped, ErrSnapshotTemporarilyUnavailable } from './errors';
import { RaftLog } from './log';
import { Progress, ProgressState } from './progress';
import { VoteResult } from './quorum';
import type { RandomSource } from './rand';
import { ReadOnly, maxPendingReadIndexRequests } from './read-only';
import type { Storage } from './storage';
import { ProgressTracker } from './tracker';
import {
  type ConfChange,
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
  isEmptyHardState,
  makeMessage,
  voteResponseType,
} from './types';
import { noLimit, payloadSize } from './util';

export interface Config {
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTick: number;
  /** Ticks between leader heartbeats. Must be smaller than electionTick. */
  heartbeatTick: number;
  storage: Storage;
  random: RandomSource;
  /** Last index applied by the application before a restart (0: replay from the snapshot). */
  applied?: number;
  /** Bound on the bytes of entries in one MsgApp. */
  maxSizePerMsg?: number;
  /** Bound on the bytes of committed entries in one Ready. */
  maxCommittedSizePerReady?: number;
  /** Bound on the payload bytes of entries appended by the leader but not yet committed. */
  maxUncommittedEntriesSize?: number;
  /** Bound on MsgApp in flight to one follower in Replicate state. */
  maxInflightMsgs?: number;
  /** A leader that has not heard from a quorum for an election timeout steps down. */
  checkQuorum?: boolean;
  /** Campaign only after a pre-vote round shows the node could win (no term inflation). */
  preVote?: boolean;
  /** Followers drop proposals instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /**
   * A leader sends the appends for proposals when the next Ready is taken, not at each
   * proposal: the proposals stepped in meanwhile (the member's own and those forwarded
   * by followers) reach each follower in one message. Off by default (etcd's behaviour).
   */
  batchAppends?: boolean;
  /**
   * The leader counts its own log toward a commit only up to what the application reports
   * durable (RawNode.persisted), not from the moment it appends (etcd's behaviour, which
   * requires the caller to persist each Ready before taking the next). The caller may then
   * take the next Ready while the leader's own write is in flight: an entry commits once a
   * quorum has it on disk, which can be the followers alone (Raft thesis 10.2.1;
   * etcd-io/raft's asynchronous storage writes do the same). Off by default.
   */
  leaderAcksOnPersist?: boolean;
}

export const defaultMaxSizePerMsg = 1024 * 1024;
export const defaultMaxInflightMsgs = 256;
export const defaultMaxUncommittedEntriesSize = 64 * 1024 * 1024;

/** Context of a vote caused by leadership transfer: bypasses the leader lease. */
export const campaignTransferContext = new TextEncoder().encode('CampaignTransfer');

enum CampaignType {
  PreElection,
  Election,
  Transfer,
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function validateConfig(c: Config): void {
  assert(c.id !== None, 'cannot use none as id');
  assert(c.heartbeatTick > 0, 'heartbeat tick must be greater than 0');
  assert(c.electionTick > c.heartbeatTick, 'election tick must be greater than heartbeat tick');
  if (c.maxInflightMsgs !== undefined) assert(c.maxInflightMsgs > 0, 'max inflight messages must be greater than 0');
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = None;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  readonly trk: ProgressTracker;
  state: StateType = StateType.Follower;
  isLearner = false;
  msgs: Message[] = [];
  lead: NodeId = None;
  /** Target of a leadership transfer in progress, or None. */
  leadTransferee: NodeId = None;
  /** Index of the latest ConfChange the leader appended; a new one waits until applied >= it. */
  pendingConfIndex = 0;
  /** Payload bytes of entries appended since the last commit (leader only). */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  /** ReadIndex requests received before an entry of this term committed. */
  pendingReadIndexMessages: Message[] = [];
  private readRoundSeq = 0;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  private readonly batchAppends: boolean;
  private readonly leaderAcksOnPersist: boolean;
  /** Proposals were appended whose appends are not sent yet (batchAppends). */
  private appendsPending = false;
  private readonly random: RandomSource;

  constructor(c: Config) {
    validateConfig(c);
    this.id = c.id;
    this.random = c.random;
    this.raftLog = new RaftLog(c.storage, c.maxCommittedSizePerReady ?? c.maxSizePerMsg ?? noLimit);
    this.maxMsgSize = c.maxSizePerMsg ?? defaultMaxSizePerMsg;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? defaultMaxUncommittedEntriesSize;
    this.trk = new ProgressTracker(c.maxInflightMsgs ?? defaultMaxInflightMsgs);
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.batchAppends = c.batchAppends ?? false;
    this.leaderAcksOnPersist = c.leaderAcksOnPersist ?? false;
    this.readOnly = new ReadOnly(() => ++this.readRoundSeq);

    const { hardState, confState } = c.storage.initialState();
    const restored = restoreConfig(confState, this.raftLog.lastIndex(), this.trk.maxInflight);
    this.switchToConfig(restored.config, restored.progress);
    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) {
      assertIndex(c.applied, 'config.applied');
      this.raftLog.appliedTo(c.applied);
    }
    this.becomeFollower(this.term, None);
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  // ---- sending ----

  /** Queue a message; fills in `from` and (for all but votes, proposals, reads) the term. */
  send(m: Message): void {
    if (m.from === None) m.from = this.id;
    if (
      m.type === MessageType.Vote ||
      m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      // Votes carry the term of the election (pre-votes a future term), set by the caller.
      assert(m.term !== 0, () => `term should be set when sending ${MessageType[m.type]}`);
    } else {
      assert(m.term === 0, () => `term should not be set when sending ${MessageType[m.type]} (was ${m.term})`);
      // Proposals and reads forwarded to the leader are local to its term, not ours.
      if (m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Send an append (or a snapshot) to `to` if its progress allows. */
  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Send entries from pr.next on, or a snapshot if they were compacted. With
   * sendIfEmpty false, nothing is sent when there are no new entries. Returns whether
   * a message was sent.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    if (pr.next < this.raftLog.firstIndex()) return this.sendSnapshot(to, pr);

    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.term(prevIndex);
    const ents = this.raftLog.entries(pr.next, this.maxMsgSize);
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(
      makeMessage({ type: MessageType.App, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.raftLog.committed }),
    );
    if (ents.length !== 0) {
      switch (pr.state) {
        case ProgressState.Replicate: {
          const last = ents[ents.length - 1].index;
          pr.optimisticUpdate(last);
          pr.inflights.add(last);
          break;
        }
        case ProgressState.Probe:
          pr.probeSent = true;
          break;
        default:
          assert(false, () => `${this.id} is sending append in unhandled state ${ProgressState[pr.state]}`);
      }
    }
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // An inactive follower may be down; do not build and ship a snapshot for nothing.
    if (!pr.recentActive) return false;
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (e) {
      // The application is making one; retry on a later heartbeat response.
      if (e === ErrSnapshotTemporarilyUnavailable) return false;
      throw e;
    }
    assert(snapshot.metadata.index !== 0, 'need non-empty snapshot');
    pr.becomeSnapshot(snapshot.metadata.index);
    this.send(makeMessage({ type: MessageType.Snap, to, snapshot }));
    return true;
  }

  /** Heartbeats carry commit, capped at what the follower is known to have (it may lack later entries). */
  sendHeartbeat(to: NodeId, ctx: Uint8Array | null): void {
    const pr = this.trk.progress.get(to);
    if (pr === undefined) return;
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send(makeMessage({ type: MessageType.Heartbeat, to, commit, context: ctx ?? emptyBytes }));
  }

  bcastAppend(): void {
    this.appendsPending = false;
    for (const id of this.trk.ids()) if (id !== this.id) this.sendAppend(id);
  }

  bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | null): void {
    for (const id of this.trk.ids()) if (id !== this.id) this.sendHeartbeat(id, ctx);
  }

  // ---- commitment and application ----

  /** Advance commit to the quorum's match index, if that entry is of the current term. */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  appliedTo(index: number): void {
    this.raftLog.appliedTo(index);
  }

  // ---- state transitions ----

  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const lastIndex = this.raftLog.lastIndex();
    const prs = new Map<NodeId, Progress>();
    for (const [id, old] of this.trk.progress) {
      const pr = new Progress(lastIndex + 1, this.trk.maxInflight, old.isLearner);
      if (id === this.id) pr.match = lastIndex;
      prs.set(id, pr);
    }
    this.trk.setConfig(this.trk.config, prs);
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(() => ++this.readRoundSeq);
    this.pendingReadIndexMessages = [];
  }

  /** Leader: assign term and index to new entries and append them. False if over the uncommitted bound. */
  appendEntry(es: Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i].term = this.term;
      es[i].index = li + 1 + i;
    }
    if (!this.increaseUncommittedSize(es)) return false;
    const last = this.raftLog.append(es);
    // The leader's own "acknowledgement": the caller persists before acting on the commit
    // (or, with leaderAcksOnPersist, reports it with persisted() once it is on disk).
    if (this.leaderAcksOnPersist) return true;
    this.trk.progress.get(this.id)?.maybeUpdate(last);
    this.maybeCommit();
    return true;
  }

  /**
   * leaderAcksOnPersist: the entries up to `index`, the last of them of term `term`, are on
   * this node's disk. A leader counts them toward commitment now. Ignored when the entry at
   * `index` is no longer of that term (replaced since) or this node does not lead.
   */
  persisted(index: number, term: number): void {
    if (this.state !== StateType.Leader || !this.raftLog.matchTerm(index, term)) return;
    const self = this.trk.progress.get(this.id);
    if (self === undefined || !self.maybeUpdate(index)) return;
    this.commitAndBroadcast();
  }

  /** Leader: advances commit if the quorum allows; if it moved, releases the ReadIndex requests held for it and tells the followers. */
  private commitAndBroadcast(): boolean {
    if (!this.maybeCommit()) return false;
    this.releasePendingReadIndexMessages();
    this.bcastAppend();
    return true;
  }

  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(makeMessage({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(makeMessage({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== None) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(makeMessage({ type: MessageType.Beat, from: this.id }));
    }
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  becomeCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, 'invalid transition [leader -> pre-candidate]');
    // Pre-vote changes neither term nor vote: a node that cannot win disrupts nobody.
    this.trk.resetVotes();
    this.lead = None;
    this.state = StateType.PreCandidate;
  }

  becomeLeader(): void {
    assert(this.state !== StateType.Follower, 'invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id);
    assert(self !== undefined, 'leader is not a member');
    self.becomeReplicate();
    self.recentActive = true;
    // Rule 3 of confchange.ts: no conf change before an entry of this term is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // §5.4.2 / §8: commit an entry of the new term at once, which commits everything
    // before it and lets ReadIndex be served.
    const ok = this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: emptyBytes }]);
    assert(ok, 'empty entry was dropped');
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) return;
    // Rule 4 of confchange.ts.
    if (this.raftLog.committed > this.raftLog.applied) {
      const ents = this.raftLog.slice(this.raftLog.applied + 1, this.raftLog.committed + 1, noLimit);
      if (ents.some((e) => e.type === EntryType.ConfChange)) return;
    }
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    if (!this.promotable()) return;
    let voteMsg: MessageType;
    let term: number;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      // Pre-votes ask for the term we would campaign in, without taking it.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, voteResponseType(voteMsg), true) === VoteResult.Won) {
      // Single voter: won at once.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.votersSorted()) {
      if (id === this.id) continue;
      this.send(
        makeMessage({
          type: voteMsg,
          to: id,
          term,
          index: lastIndex,
          logTerm: lastTerm,
          context: t === CampaignType.Transfer ? campaignTransferContext : emptyBytes,
        }),
      );
    }
  }

  private poll(id: NodeId, t: MessageType, granted: boolean): VoteResult {
    void t;
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes().result;
  }

  // ---- step ----

  /** Process one message. Throws ErrProposalDropped / ErrReadIndexDropped for local requests that cannot proceed. */
  step(m: Message): void {
    // Numbers from the network must be exact: a rounded index would corrupt the log.
    assertIndex(m.term, 'message term');
    assertIndex(m.logTerm, 'message logTerm');
    assertIndex(m.index, 'message index');
    assertIndex(m.commit, 'message commit');
    assertIndex(m.rejectHint, 'message rejectHint');
    if (m.term === 0) {
      // Local message (or a forwarded proposal / read).
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = sameBytes(m.context, campaignTransferContext);
        // Leader lease: while we hear from a live leader, ignore (pre-)votes; a node
        // that was partitioned away must not depose a working leader (§9.6).
        const inLease = this.checkQuorum && this.lead !== None && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // Never change term in response to a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // The term in a granted pre-vote is the one we will campaign in; take it when
        // we win the pre-vote quorum, not now.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, None);
      }
    } else if (m.term < this.term) {
      if (m.type === MessageType.Heartbeat || m.type === MessageType.App) {
        // Reply with our term (§5.1), so that a leader of an older term steps down.
        // etcd-io/raft does this only with check-quorum or pre-vote, relying otherwise
        // on our own votes to raise the leader's term; but a node whose configuration
        // is stale (it missed its own re-membering) sends its votes to the wrong
        // nodes, and would be stranded forever at its higher term (found by the
        // simulator).
        this.send(makeMessage({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        // Tell a pre-candidate with a stale term that it cannot win.
        this.send(makeMessage({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      }
      // Otherwise ignore stale messages.
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return;
      case MessageType.Vote:
      case MessageType.PreVote: {
        // §5.2: one vote per term; a repeated request from the same candidate is granted again.
        const canVote =
          this.vote === m.from ||
          (this.vote === None && this.lead === None) ||
          (m.type === MessageType.PreVote && m.term > this.term);
        // §5.4.1: only for a candidate whose log is at least as up to date as ours.
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.send(makeMessage({ type: voteResponseType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(makeMessage({ type: voteResponseType(m.type), to: m.from, term: this.term, reject: true }));
        }
        return;
      }
      default:
        switch (this.state) {
          case StateType.Leader:
            this.stepLeader(m);
            return;
          case StateType.Candidate:
          case StateType.PreCandidate:
            this.stepCandidate(m);
            return;
          case StateType.Follower:
            this.stepFollower(m);
            return;
        }
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        if (!this.trk.quorumActive()) this.becomeFollower(this.term, None);
        // Activity is measured per election timeout.
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
        return;
      case MessageType.Prop:
        this.handleProposal(m);
        return;
      case MessageType.ReadIndex:
        if (this.trk.isSingleton()) {
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // The commit index is only known to be current once an entry of this term is
        // committed (§6.4 step 1); until then hold the request.
        if (!this.committedEntryInCurrentTerm()) {
          if (this.pendingReadIndexMessages.length >= maxPendingReadIndexRequests) {
            if (m.from === None || m.from === this.id) throw ErrReadIndexDropped;
            return;
          }
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.startReadIndex(m);
        return;
    }

    const pr = this.trk.progress.get(m.from);
    if (pr === undefined) return;
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        this.handleHeartbeatResponse(m, pr);
        return;
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for an append response or a heartbeat response before probing again.
        pr.probeSent = true;
        return;
      case MessageType.Unreachable:
        // The follower may have lost appends in flight; probe again.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        return;
      case MessageType.TransferLeader:
        this.handleTransferLeader(m.from, pr);
        return;
    }
  }

  private handleProposal(m: Message): void {
    assert(m.entries.length > 0, `${this.id} stepped empty MsgProp`);
    // Removed from the configuration: we cannot count ourselves, so do not lead writes.
    if (!this.trk.progress.has(this.id)) throw ErrProposalDropped;
    // Proposals would have to be re-proposed after the transfer anyway.
    if (this.leadTransferee !== None) throw ErrProposalDropped;
    const ents = m.entries;
    for (let i = 0; i < ents.length; i++) {
      const e = ents[i];
      if (e.type !== EntryType.ConfChange) continue;
      // Rule 2 of confchange.ts: one change at a time. A refused or invalid change
      // becomes an empty normal entry, so the proposer sees it applied as a no-op.
      const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
      let invalid = false;
      try {
        invalid = validateConfChange(this.trk.config, decodeConfChange(e.data)) !== null;
      } catch {
        invalid = true;
      }
      if (alreadyPending || invalid) {
        ents[i] = { term: 0, index: 0, type: EntryType.Normal, data: emptyBytes };
      } else {
        this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
      }
    }
    if (!this.appendEntry(ents)) throw ErrProposalDropped;
    if (this.batchAppends) this.appendsPending = true;
    else this.bcastAppend();
  }

  /** Sends the appends held back for proposals (batchAppends); RawNode calls it before reading messages. */
  sendPendingAppends(): void {
    if (!this.appendsPending) return;
    this.appendsPending = false;
    if (this.state === StateType.Leader) this.bcastAppend();
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      // Fast backtracking (§5.3, last paragraphs): jump over a whole term of
      // mismatching entries per round trip using the follower's (hint, term).
      let nextProbeIdx = m.rejectHint;
      if (m.logTerm > 0) nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm)[0];
      if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const oldPaused = pr.isPaused();
    // A probe answered at the index we already knew also proves the logs match there
    // (unless that index was compacted: then only a snapshot helps, and switching to
    // Replicate would just resend it in a loop).
    const reprobe = pr.match === m.index && pr.state === ProgressState.Probe && m.index + 1 >= this.raftLog.firstIndex();
    if (!(pr.maybeUpdate(m.index) || reprobe)) return;
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        // Caught up past the compaction point: normal appends can continue.
        if (pr.match + 1 >= this.raftLog.firstIndex() || pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    if (!this.commitAndBroadcast() && oldPaused) {
      // The follower was throttled and may now take more.
      this.sendAppend(m.from);
    }
    // Fill the follower's window while there are entries to send.
    while (this.maybeSendAppend(m.from, false)) {
      /* keep sending */
    }
    if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
      // §3.10: the transferee caught up; tell it to campaign now.
      this.sendTimeoutNow(m.from);
    }
  }

  private handleHeartbeatResponse(m: Message, pr: Progress): void {
    pr.recentActive = true;
    pr.probeSent = false;
    // The follower is alive but our window is full: appends were probably lost. Free
    // one slot so that the append below goes out; the follower's rejection (it lacks
    // the lost entries) then moves it back to Probe.
    if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from);
    if (m.context.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.context);
    if (acks === null) return;
    let granted = 0;
    for (const id of this.trk.config.voters) if (acks.has(id)) granted++;
    if (granted < Math.floor(this.trk.config.voters.size / 2) + 1) return;
    const { released, nextCtx } = this.readOnly.advance(this.id);
    for (const rs of released) this.respondToReadIndex(rs.req, rs.index);
    if (nextCtx !== null) this.bcastHeartbeatWithCtx(nextCtx);
  }

  private handleTransferLeader(transferee: NodeId, pr: Progress): void {
    if (pr.isLearner) return;
    const last = this.leadTransferee;
    if (last !== None) {
      if (last === transferee) return; // already in progress
      this.abortLeaderTransfer();
    }
    if (transferee === this.id) return;
    // The transfer must finish within one election timeout (see tickHeartbeat).
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.raftLog.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private stepCandidate(m: Message): void {
    const myVoteRespType = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        throw ErrProposalDropped;
      case MessageType.App:
        // A leader of our term exists (§5.2): step down.
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case MessageType.ReadIndex:
        if (m.from === None || m.from === this.id) throw ErrReadIndexDropped;
        return;
      case myVoteRespType: {
        const res = this.poll(m.from, m.type, !m.reject);
        if (res === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) this.campaign(CampaignType.Election);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.Lost) {
          // A granted pre-vote response may carry a higher term; a lost election keeps ours.
          this.becomeFollower(this.term, None);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === None || this.disableProposalForwarding) throw ErrProposalDropped;
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.TransferLeader:
        if (this.lead === None) return;
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.TimeoutNow:
        // §3.10: campaign at once, skipping pre-vote (we know the leader is alive and
        // wants this) and bypassing other followers' lease (campaignTransferContext).
        this.hup(CampaignType.Transfer);
        return;
      case MessageType.ReadIndex:
        if (this.lead === None) {
          if (m.from === None || m.from === this.id) throw ErrReadIndexDropped;
          return;
        }
        m.to = this.lead;
        this.send(m);
        return;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context });
        return;
    }
  }

  // ---- follower handlers ----

  handleAppendEntries(m: Message): void {
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i];
      assertIndex(e.term, 'entry term');
      // Entries of one append are contiguous and follow m.index (log matching relies on it).
      assert(e.index === m.index + 1 + i, () => `append from ${m.from} has entry ${e.index} at position ${i} after ${m.index}`);
    }
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index is already known to match; tell the leader.
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNewIndex = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNewIndex >= 0) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: lastNewIndex }));
      return;
    }
    // §5.3 consistency check failed. Hint the largest index whose term is <= the
    // leader's logTerm at m.index: entries above it cannot match.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const [idx, term] = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send(
      makeMessage({ type: MessageType.AppResp, to: m.from, index: m.index, reject: true, rejectHint: idx, logTerm: term }),
    );
  }

  handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(makeMessage({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }

  handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === null) return;
    assertIndex(s.metadata.index, 'snapshot index');
    assertIndex(s.metadata.term, 'snapshot term');
    if (this.restore(s)) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Install a snapshot from the leader. Returns false if it was ignored. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only a leader of our term sends snapshots; a non-follower receiving one means
      // two leaders in a term. Defend by moving to a higher term.
      this.becomeFollower(this.term + 1, None);
      return false;
    }
    const cs = s.metadata.confState;
    if (!cs.voters.includes(this.id) && !cs.learners.includes(this.id)) {
      // The snapshot predates our addition; the leader will send a newer one.
      return false;
    }
    // Our log already has the snapshot's last entry: just fast-forward commit.
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    const restored = restoreConfig(cs, this.raftLog.lastIndex(), this.trk.maxInflight);
    this.switchToConfig(restored.config, restored.progress);
    return true;
  }

  /** Whether this node may become leader: a voter, not waiting to install a snapshot. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  // ---- membership ----

  /** Apply a committed ConfChange (called by the application when it applies the entry). */
  applyConfChange(cc: ConfChange): ConfState {
    if (validateConfChange(this.trk.config, cc) !== null) return this.trk.confState();
    const r = applyChange(this.trk.config, this.trk.progress, cc, this.raftLog.lastIndex(), this.trk.maxInflight);
    return this.switchToConfig(r.config, r.progress);
  }

  private switchToConfig(config: ProgressTracker['config'], progress: Map<NodeId, Progress>): ConfState {
    this.trk.setConfig(config, progress);
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;
    if ((pr === undefined || this.isLearner) && this.state === StateType.Leader) {
      // Removed or demoted: we can no longer count ourselves, so step down and let
      // the remaining voters elect a leader.
      this.becomeFollower(this.term, None);
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    // The quorum changed: the commit index may move (e.g. a slow voter was removed).
    if (!this.commitAndBroadcast()) {
      for (const id of this.trk.ids()) if (id !== this.id) this.maybeSendAppend(id, false);
    }
    if (this.leadTransferee !== None && !this.trk.config.voters.has(this.leadTransferee)) this.abortLeaderTransfer();
    return cs;
  }

  // ---- helpers ----

  loadState(hs: HardState): void {
    assertIndex(hs.term, 'hardState.term');
    assertIndex(hs.commit, 'hardState.commit');
    assert(
      hs.commit >= this.raftLog.committed && hs.commit <= this.raftLog.lastIndex(),
      () => `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.random.intn(this.electionTimeout);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(makeMessage({ type: MessageType.TimeoutNow, to }));
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = None;
  }

  committedEntryInCurrentTerm(): boolean {
    return this.raftLog.termOrZero(this.raftLog.committed) === this.term;
  }

  private startReadIndex(m: Message): void {
    const ctx = this.readOnly.addRequest(this.raftLog.committed, m, this.id);
    if (ctx === false) {
      if (m.from === None || m.from === this.id) throw ErrReadIndexDropped;
      return;
    }
    if (ctx !== null) this.bcastHeartbeatWithCtx(ctx);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) {
      try {
        this.startReadIndex(m);
      } catch {
        // Dropped for lack of room; the requester times out and retries.
      }
    }
  }

  private respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === None || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context });
      return;
    }
    this.send(makeMessage({ type: MessageType.ReadIndexResp, to: req.from, index: readIndex, context: req.context }));
  }

  /** Leader: account for new uncommitted payload; false if it would exceed the bound. */
  private increaseUncommittedSize(ents: Entry[]): boolean {
    let s = 0;
    for (const e of ents) s += payloadSize(e);
    // Always admit when nothing is uncommitted, so one oversized entry cannot block forever.
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  /** Committed entries were handed to the application: release their budget. */
  reduceUncommittedSize(ents: Entry[]): void {
    if (this.uncommittedSize === 0) return;
    let s = 0;
    for (const e of ents) s += payloadSize(e);
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }
}
