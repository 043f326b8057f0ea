// A deterministic cluster simulator for the Raft core.
//
// Everything random comes from one SeededRandom, so a seed replays exactly. The
// simulated world: a network that loses, duplicates, delays and reorders messages
// and can be partitioned (including asymmetric links); nodes that crash and restart
// with only what they persisted (MemoryStorage is their disk); an application state
// machine (a running hash) that snapshots and compacts; clients that propose, change
// membership, transfer leadership and read through ReadIndex at random times.
//
// After every Ready it checks the safety properties of the Raft paper (figure 3):
// election safety, log matching, leader completeness, state machine safety, plus
// "committed entries never change" and ReadIndex linearizability.

import { decodeConfChange, decodeMessage, encodeMessage } from '../../src/raft/codec';
import { RaftError } from '../../src/raft/errors';
import { SeededRandom } from '../../src/raft/rand';
import { RawNode, SnapshotStatus, type Ready } from '../../src/raft/rawnode';
import { MemoryStorage } from '../../src/raft/storage';
import {
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  StateType,
  emptyBytes,
} from '../../src/raft/types';

export interface SimOptions {
  seed: number;
  nodes: number;
  chaosTicks: number;
  /** Ticks after healing within which a proposal must commit. */
  livenessTicks: number;
  trace?: boolean;
}

export class SimFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimFailure';
  }
}

function fail(msg: string): never {
  throw new SimFailure(msg);
}

function fnv(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

function mixNum(h: number, n: number): number {
  h ^= n & 0xffff;
  h = Math.imul(h, 16777619) >>> 0;
  h ^= Math.floor(n / 65536) & 0xffff;
  return Math.imul(h, 16777619) >>> 0;
}

function entryHash(e: Entry): number {
  return fnv(mixNum(mixNum(2166136261, e.type), e.data.length), e.data);
}

function encodeAppState(applied: number, hash: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, Math.floor(applied / 0x100000000));
  v.setUint32(4, applied >>> 0);
  v.setUint32(8, hash);
  return b;
}

function decodeAppState(b: Uint8Array): { applied: number; hash: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { applied: v.getUint32(0) * 0x100000000 + v.getUint32(4), hash: v.getUint32(8) };
}

interface InFlight {
  deliverAt: number;
  bytes: Uint8Array;
  from: NodeId;
  to: NodeId;
  type: MessageType;
}

class SimNode {
  node: RawNode | null = null;
  /** Application state; volatile (rebuilt from the snapshot on restart). */
  applied = 0;
  hash = 2166136261;
  confState: ConfState = { voters: [], learners: [] };
  removed = false;
  /** Highest commit index whose entries were checked against the global record. */
  commitChecked = 0;
  durableCommit = 0;
  durableTerm = 0;
  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
  ) {}
}

const electionTick = 10;
const heartbeatTick = 1;

export class Simulator {
  readonly rand: SeededRandom;
  readonly nodes = new Map<NodeId, SimNode>();
  now = 0;
  private queue: InFlight[] = [];
  private blocked = new Set<string>();
  private lossRate: number;
  private dupRate: number;
  private maxDelay: number;
  private readonly rates: Record<'partition' | 'crash' | 'restart' | 'propose' | 'confChange' | 'transfer' | 'read' | 'compact', number>;
  private readonly maxSizePerMsg: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  private nextId: bigint;
  private proposalSeq = 0;
  private readSeq = 0;
  // ---- global records for the invariants ----
  private leaderOfTerm = new Map<number, NodeId>();
  /** index -> term and hash of the committed entry. */
  private committed = new Map<number, { term: number; hash: number }>();
  private maxCommitted = 0;
  /** "index:term" -> hash of the entry and the term of its predecessor. */
  private logRecord = new Map<string, { hash: number; prevTerm: number }>();
  /** index -> application hash after applying it. */
  private appHashAt = new Map<number, number>();
  /** read ctx -> highest commit index anywhere when the read was issued. */
  private readIssuedAt = new Map<string, number>();
  private livenessMarker: string | null = null;
  /** Nodes inside apply(): they shut down only once their Ready is done. */
  private applying = new Set<SimNode>();
  private livenessDone = false;
  private markerIndex = 0;
  readonly log: string[] = [];
  stats = { delivered: 0, dropped: 0, crashes: 0, confChanges: 0, reads: 0, snapshots: 0, elections: 0, ticksToCommitMax: 0, ticksToConvergeMax: 0 };

  constructor(readonly opts: SimOptions) {
    this.rand = new SeededRandom(opts.seed);
    this.lossRate = this.rand.float() * 0.2;
    this.dupRate = this.rand.float() * 0.05;
    this.maxDelay = this.rand.intn(4);
    // Per-seed intensity of each fault and client action (probability per tick).
    this.rates = {
      partition: 0.005 + this.rand.float() * 0.1,
      crash: this.rand.float() * 0.03,
      restart: 0.02 + this.rand.float() * 0.1,
      propose: 0.1 + this.rand.float() * 0.6,
      confChange: this.rand.float() * 0.04,
      transfer: this.rand.float() * 0.03,
      read: this.rand.float() * 0.1,
      compact: this.rand.float() * 0.05,
    };
    this.maxSizePerMsg = this.rand.float() < 0.5 ? 1 : 64 + this.rand.intn(512);
    // Mostly the production setting, sometimes without to exercise the bare paths.
    this.preVote = this.rand.float() < 0.75;
    this.checkQuorum = this.rand.float() < 0.75;
    const peers: NodeId[] = [];
    for (let i = 1; i <= opts.nodes; i++) peers.push(BigInt(i));
    this.nextId = BigInt(opts.nodes + 1);
    for (const id of peers) {
      const sn = new SimNode(id, new MemoryStorage());
      this.nodes.set(id, sn);
      this.start(sn);
      sn.node!.bootstrap(peers);
      this.processReady(sn);
    }
  }

  private trace(s: string): void {
    if (this.opts.trace) this.log.push(`[${this.now}] ${s}`);
  }

  private start(sn: SimNode): void {
    const snap = sn.storage.snapshot();
    sn.node = new RawNode({
      // The application state is the snapshot's; the log may be kept from before it.
      applied: snap.metadata.index,
      id: sn.id,
      electionTick,
      heartbeatTick,
      storage: sn.storage,
      random: new SeededRandom(this.rand.nextUint32()),
      preVote: this.preVote,
      checkQuorum: this.checkQuorum,
      maxSizePerMsg: this.maxSizePerMsg,
      maxInflightMsgs: 1 + this.rand.intn(8),
      maxUncommittedEntriesSize: 4096,
    });
    // The application restarts from its latest snapshot.
    if (snap.metadata.index > 0) {
      const st = decodeAppState(snap.data);
      sn.applied = st.applied;
      sn.hash = st.hash;
    } else {
      sn.applied = 0;
      sn.hash = 2166136261;
    }
    sn.confState = { voters: [...snap.metadata.confState.voters], learners: [...snap.metadata.confState.learners] };
    sn.commitChecked = Math.max(sn.commitChecked, snap.metadata.index);
  }

  // ---- driving ----

  run(): void {
    for (let t = 0; t < this.opts.chaosTicks; t++) this.chaosTick();
    this.heal();
    const healedAt = this.now;
    // The bound grows with the backlog of uncommitted entries, which the seed's flow
    // control (one entry per message, 1 in flight, 3 ticks of delay) may drain slowly.
    let backlog = 0;
    for (const sn of this.liveNodes()) backlog = Math.max(backlog, sn.node!.raft.raftLog.lastIndex() - this.maxCommitted);
    const bound = this.opts.livenessTicks + 4 * backlog;
    const deadline = this.now + bound;
    while (!this.livenessDone) {
      if (this.now >= deadline) {
        fail(`liveness: no proposal committed within ${bound} ticks after healing (${this.describe()})`);
      }
      this.healedTick();
    }
    this.stats.ticksToCommitMax = this.now - healedAt;
    // Convergence: every live member of the configuration applies the marker.
    const convergeBy = this.now + bound;
    while (!this.converged()) {
      if (this.now >= convergeBy) fail(`convergence: members did not apply index ${this.markerIndex} within ${bound} ticks (${this.describe()})`);
      this.healedTick();
    }
    this.stats.ticksToConvergeMax = this.now - healedAt;
  }

  private converged(): boolean {
    const lead = this.leader();
    if (!lead) return false;
    for (const id of [...lead.confState.voters, ...lead.confState.learners]) {
      const sn = this.nodes.get(id);
      if (!sn || sn.removed) continue;
      if (!sn.node || sn.applied < this.markerIndex) return false;
    }
    return true;
  }

  private liveNodes(): SimNode[] {
    const out: SimNode[] = [];
    for (const sn of this.nodes.values()) if (sn.node && !sn.removed) out.push(sn);
    return out;
  }

  private pick<T>(xs: T[]): T | undefined {
    return xs.length === 0 ? undefined : xs[this.rand.intn(xs.length)];
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const sn of this.liveNodes()) {
      const r = sn.node!.raft;
      if (r.state === StateType.Leader && (!best || r.term > best.node!.raft.term)) best = sn;
    }
    return best;
  }

  private chaosTick(): void {
    const r = this.rand.float;
    void r;
    const p = this.rates;
    if (this.rand.float() < p.partition) this.changePartition();
    if (this.rand.float() < p.crash) this.crashOne();
    for (const sn of this.nodes.values()) {
      if (!sn.node && !sn.removed && this.rand.float() < p.restart) this.restart(sn);
    }
    if (this.rand.float() < p.propose) this.proposeRandom();
    if (this.rand.float() < p.confChange) this.changeMembership();
    if (this.rand.float() < p.transfer) this.transferLeadership();
    if (this.rand.float() < p.read) this.readRandom();
    for (const sn of this.liveNodes()) if (this.rand.float() < p.compact) this.compact(sn);
    this.tickAll();
    this.deliverDue();
  }

  private heal(): void {
    this.trace('heal');
    this.blocked.clear();
    this.lossRate = 0;
    this.dupRate = 0;
    this.rates.crash = 0;
    for (const sn of this.nodes.values()) if (!sn.node && !sn.removed) this.restart(sn);
  }

  private healedTick(): void {
    if (this.opts.trace && this.now % 50 === 0) this.trace(this.describe());
    const lead = this.leader();
    if (lead && this.livenessMarker === null) {
      const marker = `L${this.proposalSeq++}`;
      try {
        lead.node!.propose(new TextEncoder().encode(marker));
        this.livenessMarker = marker;
        this.processReady(lead);
      } catch (e) {
        if (!(e instanceof RaftError)) throw e;
      }
    }
    // Keep snapshots fresh so that new members can install one that includes them.
    if (this.now % 50 === 0) for (const sn of this.liveNodes()) this.compact(sn);
    this.tickAll();
    this.deliverDue();
    // A proposal can be lost with a leader change; propose again.
    if (this.livenessMarker !== null && !this.livenessDone && this.now % 100 === 0) this.livenessMarker = null;
  }

  private tickAll(): void {
    this.now++;
    for (const sn of this.liveNodes()) {
      sn.node!.tick();
      this.processReady(sn);
    }
  }

  // ---- network ----

  private changePartition(): void {
    const ids = [...this.nodes.keys()];
    const kind = this.rand.intn(4);
    this.blocked.clear();
    if (kind === 0) {
      this.trace('partition: heal');
    } else if (kind === 1) {
      // Isolate one node, most often the leader.
      const lead = this.leader();
      const victim = lead && this.rand.float() < 0.6 ? lead.id : this.pick(ids)!;
      for (const o of ids) {
        if (o === victim) continue;
        this.blocked.add(`${victim}-${o}`);
        this.blocked.add(`${o}-${victim}`);
      }
      this.trace(`partition: isolate ${victim}`);
    } else if (kind === 2) {
      // Split into two sides.
      const side = new Set(ids.filter(() => this.rand.float() < 0.5));
      for (const a of ids) for (const b of ids) if (side.has(a) !== side.has(b)) this.blocked.add(`${a}-${b}`);
      this.trace(`partition: split ${[...side].join(',')}`);
    } else {
      // Asymmetric: some directed links down.
      const n = 1 + this.rand.intn(ids.length);
      for (let i = 0; i < n; i++) {
        const a = this.pick(ids)!;
        const b = this.pick(ids)!;
        if (a !== b) this.blocked.add(`${a}-${b}`);
      }
      this.trace(`partition: asymmetric ${[...this.blocked].join(' ')}`);
    }
  }

  private send(m: Message): void {
    const from = this.nodes.get(m.from);
    const to = this.nodes.get(m.to);
    const lost = !to || to.removed || this.blocked.has(`${m.from}-${m.to}`) || this.rand.float() < this.lossRate;
    if (lost) {
      this.stats.dropped++;
      if (m.type === MessageType.Snap && from?.node) {
        from.node.reportSnapshot(m.to, SnapshotStatus.Failure);
      } else if (from?.node && this.rand.float() < 0.1) {
        from.node.reportUnreachable(m.to);
      }
      return;
    }
    // Encoded on the wire: exercises the codec and prevents shared objects between nodes.
    const bytes = encodeMessage(m);
    const copies = this.rand.float() < this.dupRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.queue.push({ deliverAt: this.now + this.rand.intn(this.maxDelay + 1), bytes, from: m.from, to: m.to, type: m.type });
    }
  }

  private deliverDue(): void {
    let budget = 20_000;
    for (;;) {
      const due: InFlight[] = [];
      const rest: InFlight[] = [];
      for (const f of this.queue) (f.deliverAt <= this.now ? due : rest).push(f);
      if (due.length === 0) return;
      this.queue = rest;
      // Reorder: deliver due messages in random order.
      for (let i = due.length - 1; i > 0; i--) {
        const j = this.rand.intn(i + 1);
        [due[i], due[j]] = [due[j], due[i]];
      }
      for (const f of due) {
        if (--budget === 0) fail(`network did not quiesce within a tick: ${due.slice(0, 12).map((x) => `${MessageType[x.type]} ${x.from}->${x.to}`).join(', ')}`);
        this.deliver(f);
      }
    }
  }

  private deliver(f: InFlight): void {
    const to = this.nodes.get(f.to);
    if (!to || !to.node || to.removed) {
      const from = this.nodes.get(f.from);
      if (f.type === MessageType.Snap && from?.node) from.node.reportSnapshot(f.to, SnapshotStatus.Failure);
      return;
    }
    this.stats.delivered++;
    to.node.step(decodeMessage(f.bytes));
    if (this.rand.float() < this.rates.crash / 20) {
      // Crash after the message changed the node's memory but before its Ready was
      // persisted or sent: the restarted node must not have promised anything.
      this.trace(`crash ${to.id} before persisting ${MessageType[f.type]} from ${f.from}`);
      this.stats.crashes++;
      to.node = null;
      // The snapshot stream broke: the transport reports the failure (it always reports).
      const from = this.nodes.get(f.from);
      if (f.type === MessageType.Snap && from?.node) {
        from.node.reportSnapshot(f.to, SnapshotStatus.Failure);
        this.processReady(from);
      }
      return;
    }
    if (f.type === MessageType.Snap) {
      // The transport reports that the snapshot stream completed.
      const from = this.nodes.get(f.from);
      if (from?.node) {
        from.node.reportSnapshot(f.to, SnapshotStatus.Finish);
        this.processReady(from);
      }
    }
    this.processReady(to);
  }

  // ---- faults and clients ----

  private crashOne(): void {
    const sn = this.pick(this.liveNodes());
    if (!sn) return;
    this.trace(`crash ${sn.id}`);
    this.stats.crashes++;
    sn.node = null;
  }

  private restart(sn: SimNode): void {
    this.trace(`restart ${sn.id}`);
    this.start(sn);
    this.processReady(sn);
  }

  private proposeRandom(): void {
    const sn = this.pick(this.liveNodes());
    if (!sn) return;
    const n = 1 + this.rand.intn(3);
    const datas: Uint8Array[] = [];
    for (let i = 0; i < n; i++) datas.push(new TextEncoder().encode(`p${this.proposalSeq++}:${'x'.repeat(this.rand.intn(40))}`));
    try {
      sn.node!.proposeBatch(datas);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
    this.processReady(sn);
  }

  private changeMembership(): void {
    const lead = this.leader();
    if (!lead) return;
    const cs = lead.confState;
    const maxVoters = this.opts.nodes + 2;
    const choices: (() => void)[] = [];
    const fresh = (type: ConfChangeType) => () => {
      const id = this.nextId++;
      const sn = new SimNode(id, new MemoryStorage());
      this.nodes.set(id, sn);
      this.start(sn);
      this.trace(`start fresh node ${id} for ${ConfChangeType[type]}`);
      this.proposeCC(lead, type, id);
    };
    if (cs.voters.length < maxVoters) choices.push(fresh(ConfChangeType.AddNode));
    if (cs.learners.length < 2) choices.push(fresh(ConfChangeType.AddLearnerNode));
    if (cs.learners.length > 0 && cs.voters.length < maxVoters)
      choices.push(() => this.proposeCC(lead, ConfChangeType.AddNode, this.pick(cs.learners)!));
    if (cs.voters.length > 3) choices.push(() => this.proposeCC(lead, ConfChangeType.RemoveNode, this.pick(cs.voters)!));
    if (cs.learners.length > 0) choices.push(() => this.proposeCC(lead, ConfChangeType.RemoveNode, this.pick(cs.learners)!));
    if (cs.voters.length > 3) choices.push(() => this.proposeCC(lead, ConfChangeType.AddLearnerNode, this.pick(cs.voters)!));
    const c = this.pick(choices);
    if (c) c();
  }

  private proposeCC(lead: SimNode, type: ConfChangeType, nodeId: NodeId): void {
    this.trace(`propose ${ConfChangeType[type]} ${nodeId} via ${lead.id}`);
    this.stats.confChanges++;
    try {
      lead.node!.proposeConfChange({ type, nodeId, context: emptyBytes });
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
    this.processReady(lead);
  }

  private transferLeadership(): void {
    const lead = this.leader();
    if (!lead) return;
    const target = this.pick(lead.confState.voters.filter((v) => v !== lead.id));
    if (target === undefined) return;
    this.trace(`transfer ${lead.id} -> ${target}`);
    lead.node!.transferLeader(target);
    this.processReady(lead);
  }

  private readRandom(): void {
    const sn = this.pick(this.liveNodes());
    if (!sn) return;
    const ctx = `r${this.readSeq++}`;
    this.readIssuedAt.set(ctx, this.maxCommitted);
    try {
      sn.node!.readIndex(new TextEncoder().encode(ctx));
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
    this.stats.reads++;
    this.processReady(sn);
  }

  private compact(sn: SimNode): void {
    const st = sn.storage;
    const snapIndex = st.snapshot().metadata.index;
    if (sn.applied <= snapIndex || sn.applied > st.lastIndex()) return;
    st.createSnapshot(sn.applied, sn.confState, encodeAppState(sn.applied, sn.hash));
    const keep = this.rand.intn(5);
    const compactTo = Math.max(st.firstIndex(), sn.applied - keep);
    if (compactTo > st.firstIndex() - 1 && compactTo <= sn.applied) st.compact(compactTo);
    this.stats.snapshots++;
  }

  // ---- the Ready loop of one node ----

  processReady(sn: SimNode): void {
    const node = sn.node;
    if (!node) return;
    while (node.hasReady()) {
      const rd = node.ready();
      this.persist(sn, rd);
      for (const m of rd.messages) this.send(m);
      this.applying.add(sn);
      try {
        this.apply(sn, rd);
      } finally {
        this.applying.delete(sn);
      }
      node.advance(rd);
      this.checkNode(sn);
      if (sn.removed) {
        sn.node = null;
        return;
      }
    }
  }

  private persist(sn: SimNode, rd: Ready): void {
    const st = sn.storage;
    if (rd.snapshot) {
      const s = rd.snapshot;
      const c = this.committed.get(s.metadata.index);
      if (c && c.term !== s.metadata.term) fail(`node ${sn.id} got snapshot ${s.metadata.index}/${s.metadata.term}, committed term is ${c.term}`);
      st.applySnapshot(s);
    }
    if (rd.entries.length > 0) {
      for (const e of rd.entries) {
        // Committed entries never change: a durable committed entry is never rewritten.
        if (e.index <= sn.durableCommit && e.index >= st.firstIndex() && e.index <= st.lastIndex() && st.term(e.index) !== e.term) {
          fail(`node ${sn.id} overwrites committed entry ${e.index} (term ${st.term(e.index)} -> ${e.term})`);
        }
      }
      st.append(rd.entries);
      for (const e of rd.entries) {
        if (e.index < st.firstIndex()) continue;
        const prevTerm = st.term(e.index - 1);
        const key = `${e.index}:${e.term}`;
        const h = entryHash(e);
        const rec = this.logRecord.get(key);
        // Log matching: same index and term => same entry and same predecessor.
        if (rec === undefined) this.logRecord.set(key, { hash: h, prevTerm });
        else if (rec.hash !== h || rec.prevTerm !== prevTerm)
          fail(`log matching violated at ${key} on node ${sn.id}: prevTerm ${prevTerm} vs ${rec.prevTerm}`);
      }
    }
    if (rd.hardState) {
      const hs = rd.hardState;
      if (hs.term < sn.durableTerm) fail(`node ${sn.id} term went back ${sn.durableTerm} -> ${hs.term}`);
      if (hs.commit < sn.durableCommit) fail(`node ${sn.id} commit went back ${sn.durableCommit} -> ${hs.commit}`);
      st.setHardState(hs);
      sn.durableTerm = hs.term;
      sn.durableCommit = hs.commit;
    }
  }

  private apply(sn: SimNode, rd: Ready): void {
    if (rd.snapshot) {
      const s = rd.snapshot;
      const st = decodeAppState(s.data);
      const want = this.appHashAt.get(s.metadata.index);
      if (st.applied !== s.metadata.index) fail(`snapshot data index ${st.applied} != metadata ${s.metadata.index}`);
      if (want !== undefined && want !== st.hash) fail(`snapshot at ${s.metadata.index} has a different state`);
      if (s.metadata.index <= sn.applied) fail(`node ${sn.id} installs snapshot ${s.metadata.index} at applied ${sn.applied}`);
      sn.applied = st.applied;
      sn.hash = st.hash;
      sn.confState = { voters: [...s.metadata.confState.voters], learners: [...s.metadata.confState.learners] };
      this.trace(`node ${sn.id} installed snapshot ${s.metadata.index}`);
    }
    for (const e of rd.committedEntries) {
      if (e.index !== sn.applied + 1) fail(`node ${sn.id} applies ${e.index} after ${sn.applied}`);
      const c = this.committed.get(e.index);
      const h = entryHash(e);
      // State machine safety: every node applies the same entry at each index.
      if (c === undefined) this.recordCommitted(e.index, e.term, h);
      else if (c.term !== e.term || c.hash !== h) fail(`state machine safety: node ${sn.id} applies ${e.index}/${e.term}, committed was term ${c.term}`);
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        sn.confState = sn.node!.applyConfChange(cc);
        if (cc.type === ConfChangeType.RemoveNode) this.removeNode(cc.nodeId);
      }
      sn.hash = mixNum(fnv(mixNum(sn.hash, e.index), e.data), e.term);
      sn.applied = e.index;
      const want = this.appHashAt.get(e.index);
      if (want === undefined) this.appHashAt.set(e.index, sn.hash);
      else if (want !== sn.hash) fail(`node ${sn.id} state after ${e.index} differs`);
      if (this.livenessMarker !== null && e.data.length > 0 && e.data[0] === 76 /* L */) {
        if (new TextDecoder().decode(e.data) === this.livenessMarker && !this.livenessDone) {
          this.livenessDone = true;
          this.markerIndex = e.index;
        }
      }
    }
    for (const rs of rd.readStates) {
      const ctx = new TextDecoder().decode(rs.requestCtx);
      const issued = this.readIssuedAt.get(ctx);
      if (issued === undefined) fail(`unknown read ${ctx}`);
      // Linearizability: the read index covers everything committed before the read.
      if (rs.index < issued) fail(`read ${ctx} got index ${rs.index} < ${issued} committed before it was issued`);
    }
  }

  private removeNode(id: NodeId): void {
    const sn = this.nodes.get(id);
    if (!sn || sn.removed) return;
    // A removed member shuts down (as an etcd member does when it learns it was
    // removed); if it is the node applying, it stops after this Ready.
    this.trace(`node ${id} removed`);
    sn.removed = true;
    if (!this.applying.has(sn)) sn.node = null;
  }

  private recordCommitted(index: number, term: number, hash: number): void {
    this.committed.set(index, { term, hash });
    if (index > this.maxCommitted) this.maxCommitted = index;
  }

  private checkNode(sn: SimNode): void {
    const r = sn.node?.raft;
    if (!r) return;
    // Committed entries: record on first sight, compare afterwards.
    const log = r.raftLog;
    const from = Math.max(sn.commitChecked + 1, log.firstIndex());
    for (let i = from; i <= log.committed; i++) {
      const e = log.slice(i, i + 1, Number.MAX_SAFE_INTEGER)[0];
      const h = entryHash(e);
      const c = this.committed.get(i);
      if (c === undefined) this.recordCommitted(i, e.term, h);
      else if (c.term !== e.term || c.hash !== h) fail(`node ${sn.id} committed ${i}/${e.term}, but term ${c.term} was committed`);
    }
    sn.commitChecked = Math.max(sn.commitChecked, log.committed);
    if (r.state === StateType.Leader) {
      const prev = this.leaderOfTerm.get(r.term);
      if (prev === undefined) {
        this.leaderOfTerm.set(r.term, r.id);
        this.stats.elections++;
        this.trace(`node ${r.id} leads term ${r.term}`);
        // Leader completeness: the new leader holds every committed entry.
        for (let i = log.firstIndex(); i <= this.maxCommitted; i++) {
          const c = this.committed.get(i);
          if (c && log.termOrZero(i) !== c.term) fail(`leader completeness: leader ${r.id} of term ${r.term} lacks committed ${i}/${c.term}`);
        }
        if (log.firstIndex() - 1 > this.maxCommitted) fail('leader snapshot beyond commit');
      } else if (prev !== r.id) {
        fail(`election safety: two leaders in term ${r.term}: ${prev} and ${r.id}`);
      }
    }
  }

  describe(): string {
    const parts: string[] = [];
    for (const sn of this.nodes.values()) {
      const r = sn.node?.raft;
      parts.push(
        r
          ? `${sn.id}:${StateType[r.state]} t${r.term} lead${r.lead} c${r.raftLog.committed} a${sn.applied} last${r.raftLog.lastIndex()} cs[${sn.confState.voters}|${sn.confState.learners}]`
          : `${sn.id}:${sn.removed ? 'removed' : 'down'}`,
      );
      if (r && r.state === StateType.Leader) {
        for (const [id, pr] of r.trk.progress) parts.push(`  pr ${id}: ${pr.toString()}`);
        parts.push(`  firstIndex ${r.raftLog.firstIndex()} transferee ${r.leadTransferee} pendingConf ${r.pendingConfIndex} uncommitted ${r.uncommittedSize}`);
      }
    }
    return parts.join('; ');
  }
}
