import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { PeerTransport } from '../peer';
import {
  ConfChange,
  ConfState,
  Entry,
  EntryType,
  ErrProposalDropped,
  ErrReadIndexDropped,
  MemoryStorage,
  Message,
  MessageType,
  RawNode,
  Ready,
  ReadState,
  SeededRandom,
  Snapshot,
  SnapshotStatus,
  decodeConfChange,
  decodeMessage,
  decodeSnapshot,
  emptyBytes,
  encodeMessage,
  encodeSnapshot,
} from '../raft';
import { Wal, WalContents } from '../wal/wal';
import { Errors } from './errors';
import { CommittedEntry } from './local-log';
import type { ReplicatedLog } from './replicated-log';

// The log of a member with peers: src/raft decides, the WAL makes durable, src/peer
// carries messages. One loop drives the node (etcd's raftNode): on every tick, message
// and proposal, drain Ready: persist entries and hard state (fdatasync when Raft says it
// must), then send messages, then hand committed entries to the apply loop, then advance.
// Nothing is sent before what it promises is on disk.
//
// Reads: ReadIndex requests that arrive while one is being confirmed share the next round.

export interface RaftLogOptions {
  memberId: bigint;
  /** Every member of the cluster, this one included, by ID. */
  members: Map<bigint, string[]>;
  heartbeatMs: number;
  electionMs: number;
  wal: Wal;
  contents: WalContents;
  transport: PeerTransport;
  log: Logger;
  /** A brand-new cluster: bootstrap the membership as the first entries. */
  bootstrap: boolean;
  /** Reads not answered within this are failed (etcd: request timed out). */
  readTimeoutMs: number;
  /** The member's whole state, streamed to a follower that needs a snapshot. */
  snapshotData: () => AsyncIterable<Buffer>;
  /** Replaces the member's state with a leader's snapshot stream (before Raft learns of it). */
  installSnapshot: (data: AsyncIterable<Buffer>) => Promise<void>;
  /** Entries kept behind a snapshot for followers that are only a little behind. */
  catchUpEntries: number;
  /** A snapshot transfer that takes longer than this is abandoned (Raft retries later). */
  snapshotTimeoutMs: number;
}

// Raft snapshots carry no data of their own: the leader streams its whole LevelDB state
// beside the MsgSnap (etcd sends its bolt file the same way). That state is at least as new
// as the snapshot's index; the follower's apply loop skips the entries it already holds.

/** Messages that say nothing about this member's log or vote: safe to send before its fdatasync. */
const promisesNothing = (m: Message): boolean => m.type === MessageType.Prop || m.type === MessageType.ReadIndex;
const promisesSomething = (m: Message): boolean => !promisesNothing(m);

interface PendingRead {
  resolve: (index: number) => void;
  reject: (err: unknown) => void;
}

interface ReadRound {
  waiters: PendingRead[];
  deadline: number;
}

export class RaftLog implements ReplicatedLog {
  private readonly node: RawNode;
  private readonly storage: MemoryStorage;
  private onCommit: (entries: CommittedEntry[]) => void = () => undefined;
  private onFatal: (err: Error) => void = () => undefined;
  private processing = false;
  private again = false;
  /**
   * process() waits for the fdatasync of a Ready whose committed entries are applied: what
   * arrives meanwhile and needs nothing from that disk write goes out at once (sideLane).
   */
  private syncWait = false;
  private sideLaneScheduled = false;
  private stopped = false;
  private started = false;
  private ticker: NodeJS.Timeout | undefined;
  private pendingReads: PendingRead[] = [];
  /** Proposals of this turn of the event loop, stepped into Raft together (proposePending). */
  private proposals: Buffer[] = [];
  private proposalDrops: Array<((err: Error) => void) | undefined> = [];
  private readScheduled = false;
  private readonly readRounds = new Map<string, ReadRound>();
  private readSeq = 0;
  private committed = 0;
  private currentTerm = 0;
  private currentVote = 0n;
  private lead = 0n;
  private changes = 0;
  confState: ConfState = { voters: [], learners: [] };

  // Everything but the WAL's contents: storage holds its own copy of the entries, and the
  // WAL's list (every entry since the snapshot, as objects) must not live as long as the member.
  private readonly opts: Omit<RaftLogOptions, 'contents'>;

  constructor({ contents: c, ...opts }: RaftLogOptions) {
    this.opts = opts;
    this.storage = new MemoryStorage();
    if (c.snapshot?.extra && c.snapshot.extra.length > 0) this.storage.applySnapshot(decodeSnapshot(c.snapshot.extra));
    if (c.hardState) this.storage.setHardState({ term: c.hardState.term, vote: c.hardState.vote, commit: c.hardState.commit });
    if (c.entries.length > 0) {
      this.storage.append(c.entries.map((e) => ({ term: e.term, index: e.index, type: e.type as EntryType, data: e.data })));
    }
    this.node = new RawNode({
      id: opts.memberId,
      electionTick: Math.max(2, Math.round(opts.electionMs / opts.heartbeatMs)),
      heartbeatTick: 1,
      storage: this.storage,
      random: new SeededRandom(randomInt(2 ** 31)),
      preVote: true,
      checkQuorum: true,
      batchAppends: true, // the proposals of one round go to each follower in one append
      // The leader's own log counts toward a commit once its fdatasync reports back, so the
      // leader does not wait for its disk before the next Ready (see process()).
      leaderAcksOnPersist: true,
      // Every committed entry is delivered again after a restart: membership changes must
      // be re-applied to Raft, and the store skips what it already holds.
      applied: 0,
    });
    if (opts.bootstrap) this.node.bootstrap([...opts.members.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    this.currentTerm = c.hardState?.term ?? 0;
    this.currentVote = c.hardState?.vote ?? 0n;
    this.committed = c.hardState?.commit ?? 0;
  }

  get term(): number {
    return this.currentTerm;
  }

  get commitIndex(): number {
    return this.committed;
  }

  get leaderId(): bigint {
    return this.lead;
  }

  /** The first entry Raft still holds (older ones are behind a snapshot). */
  get firstIndex(): number {
    return this.storage.firstIndex();
  }

  get leaderChanges(): number {
    return this.changes;
  }

  subscribe(onCommit: (entries: CommittedEntry[]) => void, onFatal: (err: Error) => void): void {
    this.onCommit = onCommit;
    this.onFatal = onFatal;
  }

  start(): void {
    this.started = true;
    for (const [id, urls] of this.opts.members) if (id !== this.opts.memberId) this.opts.transport.addPeer(id, urls);
    this.ticker = setInterval(() => {
      this.node.tick();
      this.expireReads();
      this.kick();
    }, this.opts.heartbeatMs);
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    for (const round of this.readRounds.values()) for (const w of round.waiters) w.reject(Errors.stopped());
    this.readRounds.clear();
    const drops = this.proposalDrops;
    this.proposals = [];
    this.proposalDrops = [];
    for (const d of drops) d?.(Errors.stopped());
    while (this.processing) await new Promise((r) => setTimeout(r, 5));
  }

  /** A message from a peer. */
  receive(bytes: Uint8Array): void {
    if (this.stopped) return;
    let m;
    try {
      m = decodeMessage(bytes);
    } catch (e) {
      this.opts.log.warn({ err: e }, 'dropping an undecodable raft message');
      return;
    }
    this.node.step(m);
    this.kick();
  }

  /** A leader's snapshot for this member: install its state, then tell Raft. */
  async receiveSnapshot(metadata: Uint8Array, data: AsyncIterable<Buffer>): Promise<void> {
    if (this.stopped) throw new Error('member stopping');
    const m = decodeMessage(metadata);
    if (m.type !== MessageType.Snap || !m.snapshot) throw new Error('snapshot stream without a snapshot message');
    this.opts.log.info({ index: m.snapshot.metadata.index, term: m.snapshot.metadata.term, from: m.from.toString(16) }, 'installing a snapshot from the leader');
    await this.opts.installSnapshot(data);
    this.node.step(m);
    this.kick();
  }

  /**
   * Records a snapshot at applied index `index` and drops log entries well behind it.
   * Returns the index from which WAL segments may be released once the state is durable.
   */
  snapshot(index: number): number | undefined {
    const first = this.storage.firstIndex();
    if (index <= first) return undefined;
    let snap: Snapshot;
    try {
      snap = this.storage.createSnapshot(index, this.confState, emptyBytes);
    } catch {
      return undefined; // an older index than the current snapshot: nothing to do
    }
    this.opts.wal.appendSnapshotMark({ index, term: snap.metadata.term, extra: Buffer.from(encodeSnapshot(snap)) });
    const compactTo = index - this.opts.catchUpEntries;
    if (compactTo > first) this.storage.compact(compactTo);
    return index;
  }

  private sendSnapshot(m: ReturnType<typeof decodeMessage>): void {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.opts.snapshotTimeoutMs);
    this.opts.log.info({ to: m.to.toString(16), index: m.snapshot?.metadata.index }, 'sending a snapshot');
    this.opts.transport.sendSnapshot(m.to, encodeMessage(m), this.opts.snapshotData(), abort.signal).then(
      () => {
        clearTimeout(timer);
        this.node.reportSnapshot(m.to, SnapshotStatus.Finish);
        this.kick();
      },
      (e) => {
        clearTimeout(timer);
        this.opts.log.warn({ err: e, to: m.to.toString(16) }, 'snapshot transfer failed');
        this.node.reportSnapshot(m.to, SnapshotStatus.Failure);
        this.kick();
      },
    );
  }

  /**
   * The voting follower best placed to take over (a leader's view): recently heard from,
   * with the longest log. undefined when this member is not the leader or has no such peer.
   */
  bestTransferee(): bigint | undefined {
    if (this.lead !== this.opts.memberId) return undefined;
    let best: bigint | undefined;
    let bestMatch = -1;
    for (const [id, pr] of this.node.status().progress) {
      if (id === this.opts.memberId || pr.isLearner || !pr.recentActive) continue;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    return best;
  }

  /** Asks Raft to hand leadership to `to` (the target catches up, then campaigns at once). */
  transferLeader(to: bigint): void {
    this.node.transferLeader(to);
    this.kick();
  }

  /** Proposes a membership change; throws an EtcdError when there is no leader. */
  proposeConfChange(cc: ConfChange): void {
    if (this.stopped) throw Errors.stopped();
    if (this.lead === 0n) throw Errors.noLeader();
    this.proposePending(); // entries proposed before it stay before it
    try {
      this.node.proposeConfChange(cc);
    } catch (e) {
      if (e === ErrProposalDropped) throw Errors.noLeader();
      throw e;
    }
    this.kick();
  }

  /** The members to dial at start (the replicated membership, once the store is open). */
  setMembers(members: Map<bigint, string[]>): void {
    this.opts.members = members;
  }

  /**
   * Queues `data` for Raft; it is stepped in with every other proposal of this turn of the
   * event loop as one message (proposePending), so a follower forwards one proposal message
   * per round instead of one per request, and the leader appends them and sends them to
   * each follower in one append. `onDropped` hears when Raft refuses the batch (no leader
   * by then, or too much uncommitted).
   */
  propose(data: Buffer, onDropped?: (err: Error) => void): void {
    if (this.stopped) throw Errors.stopped();
    if (this.lead === 0n) throw Errors.noLeader();
    this.proposals.push(data);
    this.proposalDrops.push(onDropped);
    this.kick();
  }

  private proposePending(): void {
    const datas = this.proposals;
    if (datas.length === 0) return;
    const drops = this.proposalDrops;
    this.proposals = [];
    this.proposalDrops = [];
    // Chunks of at most PROPOSAL_BATCH_BYTES (one entry alone may be larger), so a
    // forwarded batch always fits in one peer message.
    for (let start = 0; start < datas.length; ) {
      let end = start + 1;
      let bytes = datas[start].length;
      while (end < datas.length && bytes + datas[end].length <= PROPOSAL_BATCH_BYTES) bytes += datas[end++].length;
      try {
        if (this.stopped) throw Errors.stopped();
        this.node.proposeBatch(end - start === datas.length ? datas : datas.slice(start, end));
      } catch (e) {
        const err = e === ErrProposalDropped ? Errors.noLeader() : (e as Error);
        for (let i = start; i < end; i++) drops[i]?.(err);
      }
      start = end;
    }
  }

  readIndex(): Promise<number> {
    if (this.stopped) return Promise.reject(Errors.stopped());
    return new Promise((resolve, reject) => {
      this.pendingReads.push({ resolve, reject });
      if (!this.readScheduled) {
        this.readScheduled = true;
        queueMicrotask(() => this.issueRead());
      }
    });
  }

  private issueRead(): void {
    this.readScheduled = false;
    const waiters = this.pendingReads;
    this.pendingReads = [];
    if (waiters.length === 0) return;
    if (this.lead === 0n) {
      for (const w of waiters) w.reject(Errors.noLeader());
      return;
    }
    const ctx = Buffer.alloc(8);
    ctx.writeBigUInt64BE(BigInt(++this.readSeq));
    this.readRounds.set(ctx.toString('hex'), { waiters, deadline: Date.now() + this.opts.readTimeoutMs });
    try {
      this.node.readIndex(ctx);
    } catch (e) {
      this.readRounds.delete(ctx.toString('hex'));
      const err = e === ErrReadIndexDropped ? Errors.noLeader() : e;
      for (const w of waiters) w.reject(err);
      return;
    }
    this.kick();
  }

  private expireReads(): void {
    const now = Date.now();
    for (const [k, round] of this.readRounds) {
      if (round.deadline > now) continue;
      this.readRounds.delete(k);
      for (const w of round.waiters) w.reject(Errors.timeout());
    }
  }

  private answerReads(states: ReadState[]): void {
    for (const rs of states) {
      const k = Buffer.from(rs.requestCtx).toString('hex');
      const round = this.readRounds.get(k);
      if (round === undefined) continue;
      this.readRounds.delete(k);
      for (const w of round.waiters) w.resolve(rs.index);
    }
  }

  private kick(): void {
    // Before start() nobody listens for committed entries: a Ready drained then would lose
    // them (Raft counts them applied). Messages from peers are stepped meanwhile, and the
    // first Ready is taken at start (found by the chaos harness: a restarted member, dialed
    // by the leader before it had subscribed, skipped the entries of that first Ready).
    if (this.stopped || !this.started) return;
    if (this.processing) {
      this.again = true;
      if (this.syncWait && !this.sideLaneScheduled) {
        this.sideLaneScheduled = true;
        setImmediate(() => this.sideLane());
      }
      return;
    }
    // Not at once: proposals and peer messages that arrive in the rest of this turn of the
    // event loop (one socket read holds many) join the same Ready, and so share one WAL
    // fdatasync and one send to each peer.
    this.processing = true;
    setImmediate(() => void this.process());
  }

  private async process(): Promise<void> {
    this.processing = true;
    try {
      do {
        this.again = false;
        this.proposePending();
        while (!this.stopped && this.node.hasReady()) {
          const rd = this.node.ready();
          if (rd.softState) {
            if (rd.softState.lead !== this.lead) {
              this.changes++;
              // A ReadIndex round confirmed by the old leader's heartbeats says nothing now.
              for (const round of this.readRounds.values()) for (const w of round.waiters) w.reject(Errors.leaderChanged());
              this.readRounds.clear();
              this.opts.log.info({ leader: rd.softState.lead.toString(16), term: this.node.status().hardState.term }, 'leader changed');
            }
            this.lead = rd.softState.lead;
          }
          if (rd.snapshot) {
            // The state itself was installed when the stream arrived (receiveSnapshot).
            this.opts.wal.appendSnapshotMark({ index: rd.snapshot.metadata.index, term: rd.snapshot.metadata.term, extra: Buffer.from(encodeSnapshot({ ...rd.snapshot, data: emptyBytes })) });
            this.storage.applySnapshot(rd.snapshot);
            this.confState = rd.snapshot.metadata.confState;
            if (rd.snapshot.metadata.index > this.committed) this.committed = rd.snapshot.metadata.index;
          }
          if (rd.entries.length > 0) {
            this.opts.wal.appendEntries(rd.entries);
            this.storage.append(rd.entries);
          }
          // A new term or vote must be on disk before anything is said in it.
          const termOrVote = rd.hardState !== null && (rd.hardState.term !== this.currentTerm || rd.hardState.vote !== this.currentVote);
          if (rd.hardState) {
            this.opts.wal.appendHardState({ term: rd.hardState.term, vote: rd.hardState.vote, commit: rd.hardState.commit });
            this.storage.setHardState(rd.hardState);
            this.currentTerm = rd.hardState.term;
            this.currentVote = rd.hardState.vote;
          }
          if (this.lead === this.opts.memberId && !termOrVote && !rd.snapshot) {
            this.leaderReady(rd);
            continue;
          }
          // Committed entries that were made durable here by an earlier Ready (the usual case:
          // an entry commits a round after it arrives) need nothing from this Ready's fdatasync.
          const committedDurable =
            rd.entries.length === 0 || rd.committedEntries.length === 0 || rd.committedEntries[rd.committedEntries.length - 1].index < rd.entries[0].index;
          // A leader gets here only with a Ready that also changes term or vote or carries a
          // snapshot (leaderReady takes the rest). Its appends and heartbeats promise nothing
          // about its own disk: they go out before its fdatasync, so followers persist in
          // parallel with it (Raft thesis 10.2.1). Not when this Ready commits its own new
          // entries: their commit index must not leave before they are durable (with
          // leaderAcksOnPersist Raft does not commit them before persisted() anyway).
          const sendFirst = this.lead === this.opts.memberId && committedDurable;
          // fdatasync only for what Raft needs on disk before it speaks: new entries, a term or
          // vote, a snapshot (rd.mustSync, etcd's MustSync). A Ready that only moves the commit
          // index (a third of them under load) writes its HardState with the next fdatasync:
          // a lost commit index is learnt again from the leader, and the entries it covers were
          // made durable by the Readies that brought them. Syncing it held the next Ready (and
          // every proposal waiting for it) behind a whole fdatasync.
          const sync = rd.mustSync || rd.snapshot !== null ? this.opts.wal.sync() : undefined;
          sync?.catch(() => undefined); // awaited below; a failure seen first by a throw in between must not go unhandled
          if (sendFirst) this.send(rd.messages);
          // A follower's forwarded proposals and read requests promise nothing either: sent
          // now, they do not wait for this member's fdatasync on their way to the leader.
          else this.send(rd.messages, promisesNothing);
          // Applying is CPU on this thread, the fdatasync is the disk: they overlap.
          if (committedDurable && rd.committedEntries.length > 0) this.deliver(rd.committedEntries);
          if (sync !== undefined) {
            this.syncWait = committedDurable && !rd.snapshot;
            try {
              await sync;
            } finally {
              this.syncWait = false;
            }
          }
          if (rd.entries.length > 0) this.persisted(rd.entries[rd.entries.length - 1]);
          if (!sendFirst) this.send(rd.messages, promisesSomething);
          if (!committedDurable && rd.committedEntries.length > 0) this.deliver(rd.committedEntries);
          if (rd.readStates.length > 0) this.answerReads(rd.readStates);
          this.node.advance(rd);
        }
      } while (this.again && !this.stopped);
    } catch (e) {
      this.onFatal(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.processing = false;
    }
  }

  /**
   * While process() waits for an fdatasync (on a follower, most of the time under load),
   * what arrives meanwhile and needs nothing from that write is not held for the next
   * Ready: forwarded proposals and ReadIndex requests go to the leader, ReadIndex answers
   * are handed out, and entries the leader has committed that were on this member's disk
   * before this Ready are applied (their callers answered). Otherwise a client of a
   * follower waited for one fdatasync of the follower's on the way in and another on the
   * way out, and the slow ones (p99 8-9 ms here, max 20-60 ms) made the tail of puts.
   */
  private sideLane(): void {
    this.sideLaneScheduled = false;
    if (!this.syncWait || this.stopped) return;
    if (this.lead === this.opts.memberId) return; // a leader's Readies seldom wait (leaderReady)
    this.proposePending();
    const out = this.node.takeMessages(promisesNothing);
    if (out.length > 0) this.send(out);
    const states = this.node.takeReadStates();
    if (states.length > 0) this.answerReads(states);
    const ents = this.node.takeDurableCommitted();
    if (ents.length > 0) this.deliver(ents);
  }

  /**
   * A leader's Ready, not waiting for its own fdatasync. Raft counts the leader's log toward
   * a commit only when persisted() reports it durable (leaderAcksOnPersist), so whatever is
   * committed is on a quorum's disks (the followers ack only after theirs), and the commit
   * index the appends carry never runs ahead of that. Everything in the Ready can go at once:
   * appends and heartbeats, committed entries to apply (their callers answered), ReadIndex
   * answers. The next Ready, with the proposals that arrived meanwhile, follows without
   * waiting for this one's disk write; the WAL keeps the writes in order and reports each
   * fdatasync in order.
   */
  private leaderReady(rd: Ready): void {
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      this.opts.wal.sync().then(
        () => {
          if (this.stopped) return;
          this.persisted(last);
          this.kick();
        },
        (err: unknown) => {
          if (!this.stopped) this.onFatal(err instanceof Error ? err : new Error(String(err)));
        },
      );
    }
    this.send(rd.messages);
    if (rd.committedEntries.length > 0) this.deliver(rd.committedEntries);
    if (rd.readStates.length > 0) this.answerReads(rd.readStates);
    this.node.advance(rd);
  }

  /** Entries up to `last` are on this member's disk (a leader counts them toward commitment now). */
  private persisted(last: Entry): void {
    this.node.persisted(last.index, last.term);
  }

  private send(messages: readonly Message[], which?: (m: Message) => boolean): void {
    for (const m of messages) {
      if (which !== undefined && !which(m)) continue;
      if (m.type === MessageType.Snap) this.sendSnapshot(m);
      else this.opts.transport.send(m.to, withEnvelope(PeerEnvelope.Raft, encodeMessage(m)));
    }
    this.opts.transport.flush();
  }

  private deliver(entries: Entry[]): void {
    const out: CommittedEntry[] = [];
    for (const e of entries) {
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        this.confState = this.node.applyConfChange(cc);
        out.push({ index: e.index, term: e.term, data: EMPTY, confChange: cc });
      } else {
        out.push({ index: e.index, term: e.term, data: Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength) });
      }
      if (e.index > this.committed) this.committed = e.index;
    }
    this.onCommit(out);
  }
}

const EMPTY = Buffer.alloc(0);
/** The most proposal bytes stepped into Raft as one message (a forwarded batch stays well under a peer message's limit). */
const PROPOSAL_BATCH_BYTES = 4 * 1024 * 1024;

/** The first byte of every peer message says what it carries (cairn's peer protocol v1). */
export const enum PeerEnvelope {
  Raft = 0,
  /** A follower asks the leader to renew a lease: u64 request id | i64 lease id. */
  LeaseRenew = 1,
  /** The leader's answer: u64 request id | i64 TTL in seconds (0: not found). */
  LeaseRenewed = 2,
  /** A member's client URLs and name, pushed to the others: utf8 JSON {name, clientUrls}. */
  Attributes = 3,
  /** A follower asks the leader how long a lease has left: u64 request id | i64 lease id. */
  LeaseRemaining = 4,
  /** The leader's answer: u64 request id | i64 seconds left (-1: expired or unknown). */
  LeaseRemainingAnswer = 5,
  /** A member asks a peer for its HashKV at a revision: u64 request id | u64 revision. */
  HashKV = 6,
  /** The answer: u64 request id | u8 status (0 ok, 1 compacted, 2 future) | u32 hash | u64 compact revision. */
  HashKVAnswer = 7,
}

export function withEnvelope(kind: PeerEnvelope, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(body.byteLength + 1);
  out[0] = kind;
  out.set(body, 1);
  return out;
}
