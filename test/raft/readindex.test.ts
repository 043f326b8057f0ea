// Linearizable reads through ReadIndex (§6.4 of Ongaro's dissertation).

import { describe, expect, it } from 'vitest';
import { ErrReadIndexDropped } from '../../src/raft/errors';
import { MessageType, StateType } from '../../src/raft/types';
import { Cluster } from './cluster';
import { Network, dec, enc, msg, newStorage, newTestRaft, propose, readMessages } from './helpers';

function readAt(nt: Network, id: number, ctx: string): void {
  nt.send(msg({ type: MessageType.ReadIndex, from: BigInt(id), to: BigInt(id), context: enc(ctx) }));
}

describe('ReadIndex', () => {
  it('a single-node leader answers at once with its commit index', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1]));
    r.step(msg({ type: MessageType.Hup, from: 1n }));
    expect(r.state).toBe(StateType.Leader);
    r.step(msg({ type: MessageType.ReadIndex, context: enc('a') }));
    expect(r.readStates).toEqual([{ index: r.raftLog.committed, requestCtx: enc('a') }]);
  });

  it('the leader releases a read only after a quorum answers a heartbeat round', () => {
    const nt = new Network([null, null, null]);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(2);
    nt.isolate(3);
    readAt(nt, 1, 'r1');
    expect(nt.peer(1).readStates).toHaveLength(0);
    nt.recover();
    nt.send(msg({ type: MessageType.Beat, from: 1n, to: 1n }));
    expect(nt.peer(1).readStates.map((s) => [s.index, dec(s.requestCtx)])).toEqual([[1, 'r1']]);
  });

  it('reads that arrive while a round is in flight share the next round', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    r.becomeCandidate();
    r.becomeLeader();
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: 1 }));
    readMessages(r);
    r.step(msg({ type: MessageType.ReadIndex, context: enc('a') }));
    const round1 = readMessages(r).filter((m) => m.type === MessageType.Heartbeat);
    expect(round1).toHaveLength(2);
    r.step(msg({ type: MessageType.ReadIndex, context: enc('b') }));
    r.step(msg({ type: MessageType.ReadIndex, context: enc('c') }));
    // No new round while one is in flight.
    expect(readMessages(r)).toHaveLength(0);
    r.step(msg({ type: MessageType.HeartbeatResp, from: 2n, to: 1n, term: r.term, context: round1[0].context }));
    expect(r.readStates.map((s) => dec(s.requestCtx))).toEqual(['a']);
    // Completing round 1 starts round 2 for b and c together.
    const round2 = readMessages(r).filter((m) => m.type === MessageType.Heartbeat);
    expect(round2).toHaveLength(2);
    r.step(msg({ type: MessageType.HeartbeatResp, from: 3n, to: 1n, term: r.term, context: round2[1].context }));
    expect(r.readStates.map((s) => dec(s.requestCtx))).toEqual(['a', 'b', 'c']);
  });

  it('a stale heartbeat answer from an earlier round does not release a read', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    r.becomeCandidate();
    r.becomeLeader();
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: 1 }));
    readMessages(r);
    r.step(msg({ type: MessageType.ReadIndex, context: enc('a') }));
    r.step(msg({ type: MessageType.HeartbeatResp, from: 2n, to: 1n, term: r.term, context: enc('not-this-round') }));
    expect(r.readStates).toHaveLength(0);
  });

  it('a new leader holds reads until it has committed an entry of its term', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    r.becomeCandidate();
    r.becomeLeader();
    readMessages(r);
    r.step(msg({ type: MessageType.ReadIndex, context: enc('early') }));
    expect(readMessages(r)).toHaveLength(0);
    expect(r.pendingReadIndexMessages).toHaveLength(1);
    // The empty entry commits: the held read starts its round.
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: 1 }));
    const hbs = readMessages(r).filter((m) => m.type === MessageType.Heartbeat && m.context.length > 0);
    expect(hbs).toHaveLength(2);
    r.step(msg({ type: MessageType.HeartbeatResp, from: 3n, to: 1n, term: r.term, context: hbs[0].context }));
    expect(r.readStates.map((s) => [s.index, dec(s.requestCtx)])).toEqual([[1, 'early']]);
  });

  it('a follower forwards the read to the leader and gets the read index back', () => {
    const nt = new Network([null, null, null]);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    propose(nt.peer(1), 'x');
    nt.send(...readMessages(nt.peer(1)));
    readAt(nt, 2, 'f');
    expect(nt.peer(2).readStates.map((s) => [s.index, dec(s.requestCtx)])).toEqual([[2, 'f']]);
    expect(nt.peer(1).readStates).toHaveLength(0);
  });

  it('a follower that knows no leader refuses a local read', () => {
    const r = newTestRaft(2, 10, 1, newStorage([1, 2, 3]));
    expect(() => r.step(msg({ type: MessageType.ReadIndex, context: enc('x') }))).toThrow(ErrReadIndexDropped);
  });

  it('a deposed leader cut off from the quorum never answers a read', () => {
    const nt = new Network([null, null, null]);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(1);
    nt.send(msg({ type: MessageType.Hup, from: 2n, to: 2n }));
    propose(nt.peer(2), 'new');
    nt.send(...readMessages(nt.peer(2)));
    readAt(nt, 1, 'stale');
    nt.send(msg({ type: MessageType.Beat, from: 1n, to: 1n }));
    expect(nt.peer(1).readStates).toHaveLength(0);
  });

  it('end to end: a read served at the read index sees every write committed before it', () => {
    const c = new Cluster(3);
    c.campaign(1);
    c.propose(1, 'w1');
    c.m(3).node.readIndex(enc('q'));
    c.stabilize();
    const [rs] = c.m(3).readStates;
    expect(dec(rs.requestCtx)).toBe('q');
    expect(rs.index).toBeGreaterThanOrEqual(c.m(1).applied.find((e) => dec(e.data) === 'w1')!.index);
    expect(c.m(3).appliedIndex).toBeGreaterThanOrEqual(rs.index);
  });
});
