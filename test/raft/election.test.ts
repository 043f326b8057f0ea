// Pre-vote and check-quorum (§9.6 of Ongaro's dissertation): keeping a partitioned
// node from disrupting a healthy cluster, and deposing a leader that lost its quorum.

import { describe, expect, it } from 'vitest';
import { MessageType, StateType } from '../../src/raft/types';
import { Network, hup, msg, newStorage, newTestRaft, propose, readMessages, tickAll, tickPeer } from './helpers';

const both = { preVote: true, checkQuorum: true };

describe('pre-vote', () => {
  it('a partitioned node that rejoins does not raise the cluster term or depose the leader', () => {
    const nt = new Network([null, null, null], { preVote: true });
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(3);
    // The cluster moves on without 3, so 3's log falls behind.
    propose(nt.peer(1), 'x');
    nt.send(...readMessages(nt.peer(1)));
    for (let i = 0; i < 5; i++) nt.send(msg({ type: MessageType.Hup, from: 3n, to: 3n }));
    expect(nt.peer(3).term).toBe(1);
    expect(nt.peer(3).state).toBe(StateType.PreCandidate);
    nt.recover();
    nt.send(msg({ type: MessageType.Hup, from: 3n, to: 3n }));
    expect(nt.peer(1).state).toBe(StateType.Leader);
    expect(nt.peer(1).term).toBe(1);
  });

  it('without pre-vote, a rejoining partitioned node forces a new election in a higher term', () => {
    const nt = new Network([null, null, null]);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(3);
    nt.send(msg({ type: MessageType.Hup, from: 3n, to: 3n }));
    nt.send(msg({ type: MessageType.Hup, from: 3n, to: 3n }));
    expect(nt.peer(3).term).toBe(3);
    nt.recover();
    nt.send(msg({ type: MessageType.Hup, from: 3n, to: 3n }));
    expect(nt.peer(1).state).toBe(StateType.Follower);
    expect(nt.peer(1).term).toBe(4);
  });

  it('a node grants a pre-vote for a future term without changing its term or vote', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]), { preVote: true });
    r.becomeFollower(2, 0n);
    r.step(msg({ type: MessageType.PreVote, from: 2n, to: 1n, term: 3, index: 0, logTerm: 0 }));
    const [resp] = readMessages(r);
    expect(resp.type).toBe(MessageType.PreVoteResp);
    expect(resp.reject).toBe(false);
    expect(resp.term).toBe(3);
    expect(r.term).toBe(2);
    expect(r.vote).toBe(0n);
  });

  it('a pre-candidate that wins the pre-vote campaigns for real in the next term', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]), { preVote: true });
    hup(r);
    expect(r.state).toBe(StateType.PreCandidate);
    expect(r.term).toBe(0);
    const pre = readMessages(r);
    expect(pre.every((m) => m.type === MessageType.PreVote && m.term === 1)).toBe(true);
    r.step(msg({ type: MessageType.PreVoteResp, from: 2n, to: 1n, term: 1 }));
    expect(r.state).toBe(StateType.Candidate);
    expect(r.term).toBe(1);
    expect(readMessages(r).every((m) => m.type === MessageType.Vote)).toBe(true);
  });

  it('a pre-candidate rejected by a majority returns to follower without a term change', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]), { preVote: true });
    r.becomeFollower(2, 0n);
    hup(r);
    r.step(msg({ type: MessageType.PreVoteResp, from: 2n, to: 1n, term: 2, reject: true }));
    r.step(msg({ type: MessageType.PreVoteResp, from: 3n, to: 1n, term: 2, reject: true }));
    expect(r.state).toBe(StateType.Follower);
    expect(r.term).toBe(2);
  });
});

describe('check-quorum', () => {
  it('a leader that hears no quorum for an election timeout steps down', () => {
    const nt = new Network([null, null, null], { checkQuorum: true });
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(1);
    // The first check still sees the answers to the election's appends; the second does not.
    tickPeer(nt, 1, 10);
    expect(nt.peer(1).state).toBe(StateType.Leader);
    tickPeer(nt, 1, 10);
    expect(nt.peer(1).state).toBe(StateType.Follower);
  });

  it('a leader that hears a quorum keeps leading', () => {
    const nt = new Network([null, null, null], { checkQuorum: true });
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(3);
    tickPeer(nt, 1, 35);
    expect(nt.peer(1).state).toBe(StateType.Leader);
  });

  it('a follower that hears a live leader ignores votes from a higher term (leader lease)', () => {
    const nt = new Network([null, null, null], both);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    const f = nt.peer(2);
    f.step(msg({ type: MessageType.Vote, from: 3n, to: 2n, term: 5, index: 100, logTerm: 100 }));
    f.step(msg({ type: MessageType.PreVote, from: 3n, to: 2n, term: 5, index: 100, logTerm: 100 }));
    expect(readMessages(f)).toHaveLength(0);
    expect(f.term).toBe(1);
    expect(f.lead).toBe(1n);
  });

  it('a vote caused by leadership transfer bypasses the lease', () => {
    const nt = new Network([null, null, null], both);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    const f = nt.peer(2);
    f.step(
      msg({ type: MessageType.Vote, from: 3n, to: 2n, term: 2, index: 100, logTerm: 100, context: new TextEncoder().encode('CampaignTransfer') }),
    );
    const [resp] = readMessages(f);
    expect(resp.type).toBe(MessageType.VoteResp);
    expect(resp.reject).toBe(false);
  });

  it('a stale leader steps down when a follower answers its heartbeat with a higher term', () => {
    const nt = new Network([null, null, null], both);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(1);
    // 2 and 3 elect a new leader once their lease from 1 expires; 1 does not tick, so
    // check-quorum never fires and it still believes it leads term 1.
    for (let i = 0; i < 40; i++) {
      tickPeer(nt, 2, 1);
      tickPeer(nt, 3, 1);
    }
    const newLeader = [2, 3].find((i) => nt.peer(i).state === StateType.Leader);
    expect(newLeader).toBeDefined();
    expect(nt.peer(1).state).toBe(StateType.Leader);
    nt.recover();
    nt.send(msg({ type: MessageType.Beat, from: 1n, to: 1n }));
    expect(nt.peer(1).state).toBe(StateType.Follower);
    expect(nt.peer(1).term).toBe(nt.peer(newLeader!).term);
  });

  it('with check-quorum and pre-vote, an isolated leader is replaced and the cluster converges after healing', () => {
    const nt = new Network([null, null, null, null, null], both);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(1);
    tickAll(nt, 50);
    expect(nt.peer(1).state).not.toBe(StateType.Leader);
    nt.recover();
    tickAll(nt, 50);
    const leaders = [...nt.peers.values()].filter((p) => p.state === StateType.Leader);
    expect(leaders).toHaveLength(1);
    const term = leaders[0].term;
    for (const p of nt.peers.values()) expect(p.term).toBe(term);
  });
});
