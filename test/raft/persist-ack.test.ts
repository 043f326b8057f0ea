// Config.leaderAcksOnPersist: the leader's own log counts toward a commit only once the
// application reports it durable (RawNode.persisted), so the caller may take the next Ready
// while the leader's disk write is in flight (Raft thesis 10.2.1).

import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/raft/types';
import { msg, newStorage, newTestRaft, propose, readMessages } from './helpers';

function leaderOf(voters: number[], leaderAcksOnPersist: boolean) {
  const r = newTestRaft(1, 10, 1, newStorage(voters), { leaderAcksOnPersist });
  r.becomeCandidate();
  r.becomeLeader(); // appends the empty entry of term 1 at index 1
  readMessages(r);
  return r;
}

const ack = (from: number, index: number) => msg({ type: MessageType.AppResp, from: BigInt(from), to: 1n, term: 1, index });

describe('leaderAcksOnPersist', () => {
  it("one follower's ack does not commit an entry the leader has not reported durable", () => {
    const r = leaderOf([1, 2, 3], true);
    r.step(ack(2, 1));
    expect(r.raftLog.committed).toBe(0);
    r.persisted(1, 1);
    expect(r.raftLog.committed).toBe(1);
    // The new commit index goes out at once.
    expect(readMessages(r).filter((m) => m.type === MessageType.App && m.commit === 1).length).toBe(2);
  });

  it("both followers' acks commit an entry before the leader's own disk write reports back", () => {
    const r = leaderOf([1, 2, 3], true);
    r.step(ack(2, 1));
    r.step(ack(3, 1));
    expect(r.raftLog.committed).toBe(1);
  });

  it("without it (etcd's behaviour) the leader counts its log from the append: one follower's ack commits", () => {
    const r = leaderOf([1, 2, 3], false);
    r.step(ack(2, 1));
    expect(r.raftLog.committed).toBe(1);
  });

  it('a single voter commits only what it reports durable', () => {
    const r = leaderOf([1], true);
    propose(r, 'a');
    expect(r.raftLog.lastIndex()).toBe(2);
    expect(r.raftLog.committed).toBe(0);
    r.persisted(1, 1);
    expect(r.raftLog.committed).toBe(1);
    r.persisted(2, 1);
    expect(r.raftLog.committed).toBe(2);
  });

  it('a report for an entry of another term, or to a node that no longer leads, changes nothing', () => {
    const r = leaderOf([1, 2, 3], true);
    r.step(ack(2, 1));
    r.persisted(1, 7); // the entry at 1 is of term 1: this report is about a replaced entry
    expect(r.raftLog.committed).toBe(0);
    r.becomeFollower(2, 2n);
    r.persisted(1, 1);
    expect(r.raftLog.committed).toBe(0);
  });
});
