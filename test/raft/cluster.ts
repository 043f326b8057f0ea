// A small in-process cluster of RawNodes with a synchronous Ready loop, for
// end-to-end scenarios (snapshots, membership, transfer, ReadIndex).

import { decodeConfChange } from '../../src/raft/codec';
import { RaftError } from '../../src/raft/errors';
import { SeededRandom } from '../../src/raft/rand';
import type { Config } from '../../src/raft/raft';
import { RawNode, SnapshotStatus } from '../../src/raft/rawnode';
import { MemoryStorage } from '../../src/raft/storage';
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  type ReadState,
  StateType,
} from '../../src/raft/types';

export class Member {
  applied: Entry[] = [];
  appliedIndex = 0;
  confState: ConfState = { voters: [], learners: [] };
  readStates: ReadState[] = [];
  constructor(
    readonly id: NodeId,
    public node: RawNode,
    readonly storage: MemoryStorage,
  ) {}
  get raft() {
    return this.node.raft;
  }
}

export class Cluster {
  readonly members = new Map<NodeId, Member>();
  private inbox: Message[] = [];
  private cut = new Set<string>();
  readonly opts: Partial<Config>;

  constructor(n: number, opts: Partial<Config> = {}) {
    this.opts = opts;
    const peers: NodeId[] = [];
    for (let i = 1; i <= n; i++) peers.push(BigInt(i));
    for (const id of peers) {
      const m = this.addMember(id);
      m.node.bootstrap(peers);
    }
    this.stabilize();
  }

  /** Start a member process with empty storage (it joins once a conf change adds it). */
  addMember(id: NodeId): Member {
    const storage = new MemoryStorage();
    const node = this.newNode(id, storage, 0);
    const m = new Member(id, node, storage);
    this.members.set(id, m);
    return m;
  }

  private newNode(id: NodeId, storage: MemoryStorage, applied: number): RawNode {
    return new RawNode({
      id,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      random: new SeededRandom(Number(id) * 31),
      applied,
      ...this.opts,
    });
  }

  /** Crash and restart a member with only what it persisted. */
  restart(id: NodeId): void {
    const m = this.m(id);
    const snap = m.storage.snapshot();
    m.node = this.newNode(id, m.storage, snap.metadata.index);
    m.appliedIndex = snap.metadata.index;
    m.confState = snap.metadata.confState;
  }

  m(id: number | bigint): Member {
    const m = this.members.get(BigInt(id));
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  isolate(id: number): void {
    for (const other of this.members.keys()) {
      if (other === BigInt(id)) continue;
      this.cut.add(`${id}-${other}`);
      this.cut.add(`${other}-${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  leader(): Member | undefined {
    let best: Member | undefined;
    for (const m of this.members.values()) {
      if (m.raft.state === StateType.Leader && (!best || m.raft.term > best.raft.term)) best = m;
    }
    return best;
  }

  campaign(id: number): void {
    this.m(id).node.campaign();
    this.stabilize();
  }

  propose(id: number, data: string): void {
    this.m(id).node.propose(new TextEncoder().encode(data));
    this.stabilize();
  }

  /** Process every Ready and deliver every message until nothing moves. */
  stabilize(): void {
    for (let round = 0; round < 10_000; round++) {
      let moved = false;
      for (const m of this.members.values()) {
        while (m.node.hasReady()) {
          moved = true;
          this.handleReady(m);
        }
      }
      if (this.inbox.length > 0) {
        moved = true;
        const batch = this.inbox;
        this.inbox = [];
        for (const msg of batch) this.deliver(msg);
      }
      if (!moved) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tick(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const m of this.members.values()) m.node.tick();
      this.stabilize();
    }
  }

  /** Snapshot member `id` at its applied index and compact its log. */
  compact(id: number, keep = 0): void {
    const m = this.m(id);
    m.storage.createSnapshot(m.appliedIndex, m.confState, new TextEncoder().encode(`state@${m.appliedIndex}`));
    if (m.appliedIndex - keep > m.storage.firstIndex() - 1) m.storage.compact(m.appliedIndex - keep);
  }

  private deliver(msg: Message): void {
    const to = this.members.get(msg.to);
    const from = this.members.get(msg.from);
    const lost = !to || this.cut.has(`${msg.from}-${msg.to}`);
    if (msg.type === MessageType.Snap && from) {
      from.node.reportSnapshot(msg.to, lost ? SnapshotStatus.Failure : SnapshotStatus.Finish);
    }
    if (lost) return;
    try {
      to.node.step(msg);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  private handleReady(m: Member): void {
    const rd = m.node.ready();
    if (rd.snapshot) m.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) m.storage.append(rd.entries);
    if (rd.hardState) m.storage.setHardState(rd.hardState);
    this.inbox.push(...rd.messages);
    if (rd.snapshot) {
      m.appliedIndex = rd.snapshot.metadata.index;
      m.confState = rd.snapshot.metadata.confState;
    }
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) m.confState = m.node.applyConfChange(decodeConfChange(e.data));
      m.applied.push(e);
      m.appliedIndex = e.index;
    }
    m.readStates.push(...rd.readStates);
    m.node.advance(rd);
  }

  /** Data of the normal, non-empty entries applied by a member. */
  appliedData(id: number): string[] {
    return this.m(id)
      .applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
