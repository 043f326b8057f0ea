// The Ready/Advance contract between the core and the server.

import { describe, expect, it } from 'vitest';
import { ErrProposalDropped, ErrStepLocalMsg } from '../../src/raft/errors';
import { SeededRandom } from '../../src/raft/rand';
import { RawNode } from '../../src/raft/rawnode';
import { MemoryStorage } from '../../src/raft/storage';
import { EntryType, MessageType, StateType, makeMessage } from '../../src/raft/types';
import { enc, ids } from './helpers';

function single(opts = {}): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  const node = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: new SeededRandom(1), ...opts });
  node.bootstrap([1n]);
  return { node, storage };
}

function drain(node: RawNode, storage: MemoryStorage) {
  const all = [];
  while (node.hasReady()) {
    const rd = node.ready();
    if (rd.entries.length) storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange) node.applyConfChange({ type: 0, nodeId: 1n, context: new Uint8Array() });
    }
    node.advance(rd);
    all.push(rd);
  }
  return all;
}

describe('RawNode', () => {
  it('bootstrap yields the initial membership as committed conf-change entries to persist and apply', () => {
    const { node } = single();
    const rd = node.ready();
    expect(rd.entries.map((e) => [e.index, e.term, e.type])).toEqual([[1, 1, EntryType.ConfChange]]);
    expect(rd.committedEntries).toHaveLength(1);
    expect(rd.hardState).toEqual({ term: 1, vote: 0n, commit: 1 });
    expect(rd.mustSync).toBe(true);
    node.advance(rd);
    expect(node.hasReady()).toBe(false);
  });

  it('a single node elects itself and commits a proposal in the same Ready that persists it', () => {
    const { node, storage } = single();
    drain(node, storage);
    node.campaign();
    const rds = drain(node, storage);
    expect(rds[0].softState).toEqual({ lead: 1n, raftState: StateType.Leader });
    node.propose(enc('x'));
    const rd = node.ready();
    expect(rd.entries.map((e) => e.data)).toEqual([enc('x')]);
    expect(rd.committedEntries.map((e) => e.data)).toEqual([enc('x')]);
    node.advance(rd);
  });

  it('hard state is reported only when it changes, and entries only once', () => {
    const { node, storage } = single();
    drain(node, storage);
    node.campaign();
    drain(node, storage);
    node.tick();
    expect(node.hasReady()).toBe(false);
    node.propose(enc('y'));
    const rd = node.ready();
    expect(rd.hardState?.commit).toBe(storage.lastIndex() + 1);
    storage.append(rd.entries);
    node.advance(rd);
    expect(node.hasReady()).toBe(false);
  });

  it('ready() twice without advance() is refused', () => {
    const { node } = single();
    node.ready();
    expect(() => node.ready()).toThrow(/before advance/);
  });

  it('a restarted node reloads term, vote, commit and log from storage', () => {
    const { node, storage } = single();
    drain(node, storage);
    node.campaign();
    drain(node, storage);
    node.propose(enc('z'));
    drain(node, storage);
    const again = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: new SeededRandom(1) });
    const st = again.status();
    expect(st.hardState).toEqual(storage.initialState().hardState);
    expect(again.raft.raftLog.lastIndex()).toBe(storage.lastIndex());
    // Committed entries after the (empty) snapshot are handed out again to rebuild state.
    const rd = again.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it('local message types cannot be stepped from the network', () => {
    const { node } = single();
    expect(() => node.step(makeMessage({ type: MessageType.Hup, from: 2n, to: 1n }))).toThrow(ErrStepLocalMsg);
  });

  it('a follower without a leader drops proposals', () => {
    const storage = new MemoryStorage({ voters: ids(1, 2, 3), learners: [] });
    const node = new RawNode({ id: 1n, electionTick: 10, heartbeatTick: 1, storage, random: new SeededRandom(1) });
    expect(() => node.propose(enc('x'))).toThrow(ErrProposalDropped);
  });

  it('the leader drops proposals beyond maxUncommittedEntriesSize', () => {
    const storage = new MemoryStorage({ voters: ids(1, 2, 3), learners: [] });
    const node = new RawNode({
      id: 1n,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      random: new SeededRandom(1),
      maxUncommittedEntriesSize: 100,
    });
    node.raft.becomeCandidate();
    node.raft.becomeLeader();
    node.propose(new Uint8Array(60));
    node.propose(new Uint8Array(40));
    expect(() => node.propose(new Uint8Array(1))).toThrow(ErrProposalDropped);
  });

  it('a follower with proposal forwarding disabled drops proposals', () => {
    const storage = new MemoryStorage({ voters: ids(1, 2, 3), learners: [] });
    const node = new RawNode({
      id: 2n,
      electionTick: 10,
      heartbeatTick: 1,
      storage,
      random: new SeededRandom(1),
      disableProposalForwarding: true,
    });
    node.step(makeMessage({ type: MessageType.Heartbeat, from: 1n, to: 2n, term: 1 }));
    expect(node.raft.lead).toBe(1n);
    expect(() => node.propose(enc('x'))).toThrow(ErrProposalDropped);
  });

  it('terms and indexes that are not safe integers are refused', () => {
    const { node } = single();
    expect(() => node.step(makeMessage({ type: MessageType.Heartbeat, from: 2n, to: 1n, term: 2 ** 60 }))).toThrow(/safe/);
  });
});
