// Membership changes, one node at a time (see src/raft/confchange.ts for why this is safe).

import { describe, expect, it } from 'vitest';
import { encodeConfChange } from '../../src/raft/codec';
import { ProgressState } from '../../src/raft/progress';
import {
  ConfChangeType,
  EntryType,
  MessageType,
  StateType,
  emptyBytes,
  type NodeId,
} from '../../src/raft/types';
import { Cluster } from './cluster';
import { ent, ids, msg, newStorage, newTestRaft, readMessages } from './helpers';

const cc = (type: ConfChangeType, nodeId: NodeId) => ({ type, nodeId, context: emptyBytes });
const ccEntry = (type: ConfChangeType, nodeId: NodeId) => ({
  term: 0,
  index: 0,
  type: EntryType.ConfChange,
  data: encodeConfChange(cc(type, nodeId)),
});

function leaderOf(voters: number[], learners: number[] = []) {
  const r = newTestRaft(1, 10, 1, newStorage(voters, learners));
  r.becomeCandidate();
  r.becomeLeader();
  readMessages(r);
  return r;
}

describe('applying changes', () => {
  it('adding a voter makes the leader replicate to it and count it in the quorum', () => {
    const r = leaderOf([1]);
    r.applyConfChange(cc(ConfChangeType.AddNode, 2n));
    expect(r.trk.confState().voters).toEqual(ids(1, 2));
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, 'x')] }));
    // With two voters, the leader alone no longer commits.
    expect(r.raftLog.committed).toBe(1);
    expect(readMessages(r).some((m) => m.type === MessageType.App && m.to === 2n)).toBe(true);
  });

  it('a learner receives the log but is not counted in the commit quorum', () => {
    const r = leaderOf([1, 2], [3]);
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, 'x')] }));
    const sent = readMessages(r);
    expect(sent.some((m) => m.type === MessageType.App && m.to === 3n)).toBe(true);
    r.step(msg({ type: MessageType.AppResp, from: 3n, to: 1n, term: r.term, index: 2 }));
    expect(r.raftLog.committed).toBe(0);
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: 2 }));
    expect(r.raftLog.committed).toBe(2);
  });

  it('a learner does not campaign and candidates do not ask it for votes', () => {
    const learner = newTestRaft(3, 10, 1, newStorage([1, 2], [3]));
    for (let i = 0; i < 30; i++) learner.tick();
    expect(learner.state).toBe(StateType.Follower);
    const cand = newTestRaft(1, 10, 1, newStorage([1, 2], [3]));
    cand.step(msg({ type: MessageType.Hup, from: 1n }));
    expect(readMessages(cand).map((m) => m.to)).toEqual([2n]);
  });

  it('promoting a learner keeps its replication progress', () => {
    const r = leaderOf([1, 2], [3]);
    const pr = r.trk.progress.get(3n)!;
    pr.maybeUpdate(1);
    pr.becomeReplicate();
    r.applyConfChange(cc(ConfChangeType.AddNode, 3n));
    expect(r.trk.confState()).toEqual({ voters: ids(1, 2, 3), learners: [] });
    expect(r.trk.progress.get(3n)!.match).toBe(1);
    expect(r.trk.progress.get(3n)!.state).toBe(ProgressState.Replicate);
  });

  it('removing a voter lets the remaining majority commit what the removed one never acknowledged', () => {
    const r = leaderOf([1, 2]);
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, 'x')] }));
    expect(r.raftLog.committed).toBe(0);
    r.applyConfChange(cc(ConfChangeType.RemoveNode, 2n));
    expect(r.raftLog.committed).toBe(2);
  });

  it('a leader that removes itself steps down', () => {
    const r = leaderOf([1, 2, 3]);
    r.applyConfChange(cc(ConfChangeType.RemoveNode, 1n));
    expect(r.state).toBe(StateType.Follower);
    expect(r.promotable()).toBe(false);
  });

  it('removing the last voter is refused and changes nothing', () => {
    const r = leaderOf([1]);
    const cs = r.applyConfChange(cc(ConfChangeType.RemoveNode, 1n));
    expect(cs.voters).toEqual(ids(1));
  });
});

describe('one change at a time', () => {
  it('a second conf change proposed while one is pending becomes an empty normal entry', () => {
    const r = leaderOf([1, 2, 3]);
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ccEntry(ConfChangeType.AddNode, 4n)] }));
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ccEntry(ConfChangeType.AddNode, 5n)] }));
    const ents = r.raftLog.entries(2, 1e9);
    expect(ents.map((e) => e.type)).toEqual([EntryType.ConfChange, EntryType.Normal]);
    expect(ents[1].data.byteLength).toBe(0);
    expect(r.pendingConfIndex).toBe(2);
  });

  it('a new leader accepts no conf change before it applied an entry of its own term', () => {
    const r = leaderOf([1, 2, 3]);
    // pendingConfIndex was set to the last index at election time (the empty entry is after it).
    expect(r.pendingConfIndex).toBe(0);
    const st = newStorage([1, 2, 3]);
    st.append([ent(1, 1), ent(1, 2)]);
    const r2 = newTestRaft(1, 10, 1, st);
    r2.loadState({ term: 1, vote: 0n, commit: 2 });
    r2.becomeCandidate();
    r2.becomeLeader();
    expect(r2.pendingConfIndex).toBe(2);
    r2.step(msg({ type: MessageType.Prop, from: 1n, entries: [ccEntry(ConfChangeType.AddNode, 4n)] }));
    expect(r2.raftLog.entries(4, 1e9)[0].type).toBe(EntryType.Normal);
  });

  it('a conf change is accepted again once the previous one is applied', () => {
    const r = leaderOf([1]);
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ccEntry(ConfChangeType.AddLearnerNode, 2n)] }));
    expect(r.raftLog.committed).toBe(2);
    r.appliedTo(2);
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ccEntry(ConfChangeType.AddLearnerNode, 3n)] }));
    expect(r.raftLog.entries(3, 1e9)[0].type).toBe(EntryType.ConfChange);
  });

  it('a node with a committed but unapplied conf change does not campaign', () => {
    const st = newStorage([1, 2, 3]);
    st.append([{ ...ccEntry(ConfChangeType.AddNode, 4n), term: 1, index: 1 }]);
    const r = newTestRaft(1, 10, 1, st);
    r.loadState({ term: 1, vote: 0n, commit: 1 });
    r.step(msg({ type: MessageType.Hup, from: 1n }));
    expect(r.state).toBe(StateType.Follower);
    r.appliedTo(1);
    r.step(msg({ type: MessageType.Hup, from: 1n }));
    expect(r.state).toBe(StateType.Candidate);
  });
});

describe('end to end', () => {
  it('a fresh node added as a voter catches up, and the enlarged cluster tolerates the loss of an old member', () => {
    const c = new Cluster(3);
    c.campaign(1);
    c.propose(1, 'before');
    c.addMember(4n);
    c.m(1).node.proposeConfChange(cc(ConfChangeType.AddNode, 4n));
    c.stabilize();
    c.tick(2);
    expect(c.m(1).confState.voters).toEqual(ids(1, 2, 3, 4));
    expect(c.m(4).confState.voters).toEqual(ids(1, 2, 3, 4));
    expect(c.appliedData(4)).toEqual(['before']);
    c.isolate(3);
    c.propose(1, 'after');
    expect(c.appliedData(4)).toEqual(['before', 'after']);
  });

  it('a learner is added, catches up and is promoted to voter', () => {
    const c = new Cluster(3);
    c.campaign(1);
    c.addMember(4n);
    c.m(1).node.proposeConfChange(cc(ConfChangeType.AddLearnerNode, 4n));
    c.stabilize();
    c.tick(2);
    expect(c.m(4).confState.learners).toEqual(ids(4));
    c.m(1).node.proposeConfChange(cc(ConfChangeType.AddNode, 4n));
    c.stabilize();
    c.tick(2);
    for (const id of [1, 2, 3, 4]) expect(c.m(id).confState).toEqual({ voters: ids(1, 2, 3, 4), learners: [] });
  });

  it('after the leader removes itself, the others elect a new leader and keep committing', () => {
    const c = new Cluster(3);
    c.campaign(1);
    c.m(1).node.proposeConfChange(cc(ConfChangeType.RemoveNode, 1n));
    c.stabilize();
    c.isolate(1);
    c.tick(40);
    const l = c.leader();
    expect(l).toBeDefined();
    expect(l!.id).not.toBe(1n);
    c.propose(Number(l!.id), 'x');
    expect(c.appliedData(Number(l!.id))).toContain('x');
  });
});
