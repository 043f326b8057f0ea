// Leadership transfer (§3.10 of Ongaro's dissertation).

import { describe, expect, it } from 'vitest';
import { ErrProposalDropped } from '../../src/raft/errors';
import { MessageType, StateType } from '../../src/raft/types';
import { Network, msg, newStorage, newTestRaft, propose, readMessages, tickPeer } from './helpers';

/** A local transfer request on `leader` (as RawNode.transferLeader does), then deliver. */
function transfer(nt: Network, leader: number, to: number): void {
  const l = nt.peer(leader);
  l.step(msg({ type: MessageType.TransferLeader, from: BigInt(to), to: BigInt(leader) }));
  nt.send(...readMessages(l));
}

function elected(opts = {}): Network {
  const nt = new Network([null, null, null], opts);
  nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
  return nt;
}

describe('leadership transfer', () => {
  it('an up-to-date target campaigns at once and becomes leader', () => {
    const nt = elected();
    transfer(nt, 1, 2);
    expect(nt.peer(2).state).toBe(StateType.Leader);
    expect(nt.peer(1).state).toBe(StateType.Follower);
    expect(nt.peer(1).lead).toBe(2n);
    expect(nt.delivered.some((m) => m.type === MessageType.TimeoutNow && m.to === 2n)).toBe(true);
  });

  it('a lagging target is caught up first, then told to campaign', () => {
    const nt = elected();
    nt.isolate(3);
    propose(nt.peer(1), 'a');
    nt.send(...readMessages(nt.peer(1)));
    nt.recover();
    expect(nt.peer(3).raftLog.lastIndex()).toBeLessThan(nt.peer(1).raftLog.lastIndex());
    transfer(nt, 1, 3);
    expect(nt.peer(3).state).toBe(StateType.Leader);
    expect(nt.peer(3).raftLog.committed).toBeGreaterThanOrEqual(2);
  });

  it('the leader drops proposals while a transfer is in progress', () => {
    const nt = elected();
    nt.isolate(3);
    transfer(nt, 1, 3);
    expect(nt.peer(1).leadTransferee).toBe(3n);
    expect(() => propose(nt.peer(1), 'x')).toThrow(ErrProposalDropped);
  });

  it('a transfer to an unreachable target aborts after an election timeout', () => {
    const nt = elected();
    nt.isolate(3);
    transfer(nt, 1, 3);
    tickPeer(nt, 1, 9);
    expect(nt.peer(1).leadTransferee).toBe(3n);
    tickPeer(nt, 1, 1);
    expect(nt.peer(1).leadTransferee).toBe(0n);
    expect(nt.peer(1).state).toBe(StateType.Leader);
    propose(nt.peer(1), 'accepted again');
  });

  it('a transfer to itself, to a learner or to a non-member is ignored', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2], [3]));
    r.becomeCandidate();
    r.becomeLeader();
    readMessages(r);
    for (const to of [1n, 3n, 9n]) {
      r.step(msg({ type: MessageType.TransferLeader, from: to, to: 1n }));
      expect(r.leadTransferee).toBe(0n);
    }
  });

  it('a follower forwards a transfer request to the leader', () => {
    const nt = elected();
    nt.send(msg({ type: MessageType.TransferLeader, from: 3n, to: 2n }));
    expect(nt.peer(3).state).toBe(StateType.Leader);
  });

  it('a transfer succeeds through the leader lease of check-quorum and pre-vote', () => {
    const nt = elected({ preVote: true, checkQuorum: true });
    transfer(nt, 1, 2);
    expect(nt.peer(2).state).toBe(StateType.Leader);
    expect(nt.peer(2).term).toBe(2);
  });

  it('a second transfer to another target replaces the first', () => {
    const nt = elected();
    nt.isolate(3);
    transfer(nt, 1, 3);
    expect(nt.peer(1).leadTransferee).toBe(3n);
    transfer(nt, 1, 2);
    expect(nt.peer(2).state).toBe(StateType.Leader);
  });
});
