// Shared fixtures for the scenario tests: a Raft over MemoryStorage, and an in-process
// network in the style of etcd-io/raft's raft_test.go that delivers messages until
// quiescence, with per-link drop and isolation.

import { Raft, type Config } from '../../src/raft/raft';
import { SeededRandom } from '../../src/raft/rand';
import { MemoryStorage } from '../../src/raft/storage';
import {
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type NodeId,
  makeMessage,
} from '../../src/raft/types';

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

export function ids(...n: number[]): NodeId[] {
  return n.map((x) => BigInt(x));
}

export function newStorage(voters: number[], learners: number[] = []): MemoryStorage {
  return new MemoryStorage({ voters: ids(...voters), learners: ids(...learners) });
}

export function newTestRaft(
  id: number,
  election: number,
  heartbeat: number,
  storage: MemoryStorage,
  opts: Partial<Config> = {},
): Raft {
  return new Raft({
    id: BigInt(id),
    electionTick: election,
    heartbeatTick: heartbeat,
    storage,
    random: new SeededRandom(id * 7919),
    maxInflightMsgs: 256,
    ...(process.env.RAFT_BATCH_APPENDS === '1' ? { batchAppends: true } : {}),
    ...opts,
  });
}

export function readMessages(r: Raft): Message[] {
  r.sendPendingAppends(); // appends held back under batchAppends go out before anything is read
  const m = r.msgs;
  r.msgs = [];
  return m;
}

export function ent(term: number, index: number, data = ''): Entry {
  return { term, index, type: EntryType.Normal, data: enc(data) };
}

/** Storage pre-filled with entries of the given terms at indexes 1..n. */
export function storageWithTerms(voters: number[], terms: number[]): MemoryStorage {
  const s = newStorage(voters);
  s.append(terms.map((t, i) => ent(t, i + 1)));
  return s;
}

export function msg(m: Partial<Message> & { type: MessageType }): Message {
  return makeMessage(m);
}

/** Step a local message. */
export function hup(r: Raft): void {
  r.step(msg({ type: MessageType.Hup, from: r.id }));
}

export function propose(r: Raft, data: string): void {
  r.step(msg({ type: MessageType.Prop, from: r.id, entries: [ent(0, 0, data)] }));
}

export type Peer = Raft | null;

export class Network {
  readonly peers = new Map<NodeId, Raft>();
  readonly storage = new Map<NodeId, MemoryStorage>();
  private dropRates = new Map<string, number>();
  private ignored = new Set<MessageType>();
  private rand = new SeededRandom(42);
  /** Every message delivered, for assertions. */
  delivered: Message[] = [];

  /**
   * Build a network of the given peers. A null peer gets a default Raft with all the
   * given ids as voters (election 10, heartbeat 1).
   */
  constructor(peers: Peer[], opts: Partial<Config> = {}) {
    const all = peers.map((_, i) => i + 1);
    peers.forEach((p, i) => {
      const id = BigInt(i + 1);
      if (p === null) {
        const st = newStorage(all);
        this.storage.set(id, st);
        this.peers.set(id, newTestRaft(i + 1, 10, 1, st, opts));
      } else {
        this.peers.set(id, p);
      }
    });
  }

  peer(id: number): Raft {
    const p = this.peers.get(BigInt(id));
    if (!p) throw new Error(`no peer ${id}`);
    return p;
  }

  /** Deliver messages, and everything they cause, until none are left. */
  send(...msgs: Message[]): void {
    const queue = this.filter(msgs);
    let budget = 100_000;
    while (queue.length > 0) {
      if (--budget === 0) throw new Error('network did not quiesce');
      const m = queue.shift()!;
      const p = this.peers.get(m.to);
      if (!p) continue;
      this.delivered.push(m);
      try {
        p.step(m);
      } catch (e) {
        if ((e as Error).name !== 'RaftError') throw e;
      }
      queue.push(...this.filter(readMessages(p)));
    }
  }

  /** Persist unstable entries of every peer into its storage (as a Ready cycle would). */
  persistAll(): void {
    for (const [id, p] of this.peers) {
      const st = this.storage.get(id);
      if (!st) continue;
      const ents = p.raftLog.unstableEntries();
      if (ents.length > 0) {
        st.append(ents.slice());
        const last = ents[ents.length - 1];
        p.raftLog.stableTo(last.index, last.term);
      }
    }
  }

  drop(from: number, to: number, rate: number): void {
    this.dropRates.set(`${from}-${to}`, rate);
  }

  cut(a: number, b: number): void {
    this.drop(a, b, 2.0);
    this.drop(b, a, 2.0);
  }

  isolate(id: number): void {
    for (const other of this.peers.keys()) {
      const o = Number(other);
      if (o !== id) this.cut(id, o);
    }
  }

  ignore(t: MessageType): void {
    this.ignored.add(t);
  }

  recover(): void {
    this.dropRates.clear();
    this.ignored.clear();
  }

  private filter(msgs: Message[]): Message[] {
    const out: Message[] = [];
    for (const m of msgs) {
      if (this.ignored.has(m.type)) continue;
      // Local messages never travel.
      if (m.from === m.to) {
        out.push(m);
        continue;
      }
      const rate = this.dropRates.get(`${m.from}-${m.to}`) ?? 0;
      if (rate > 0 && this.rand.float() < rate) continue;
      out.push(m);
    }
    return out;
  }
}

export function logTerms(r: Raft): number[] {
  return r.raftLog.allEntries().map((e) => e.term);
}

/** Tick one peer n times, delivering whatever it sends. */
export function tickPeer(nt: Network, id: number, n: number): void {
  const p = nt.peer(id);
  for (let i = 0; i < n; i++) {
    p.tick();
    nt.send(...readMessages(p));
  }
}

/** Tick every peer n times, round-robin, delivering messages after each tick. */
export function tickAll(nt: Network, n: number): void {
  for (let i = 0; i < n; i++) {
    for (const p of nt.peers.values()) {
      p.tick();
      nt.send(...readMessages(p));
    }
  }
}
