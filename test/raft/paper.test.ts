// One test per claim of the Raft paper (Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm"), in the manner of etcd-io/raft's raft_paper_test.go.

import { describe, expect, it } from 'vitest';
import { StateType, MessageType, type NodeId } from '../../src/raft/types';
import {
  Network,
  ent,
  hup,
  ids,
  logTerms,
  msg,
  newStorage,
  newTestRaft,
  propose,
  readMessages,
  storageWithTerms,
} from './helpers';

describe('§5.1 terms', () => {
  for (const state of [StateType.Follower, StateType.Candidate, StateType.Leader]) {
    it(`a ${StateType[state].toLowerCase()} that sees a higher term becomes a follower of that term`, () => {
      const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
      if (state === StateType.Candidate) r.becomeCandidate();
      if (state === StateType.Leader) {
        r.becomeCandidate();
        r.becomeLeader();
      }
      r.step(msg({ type: MessageType.App, from: 2n, to: 1n, term: 5 }));
      expect(r.state).toBe(StateType.Follower);
      expect(r.term).toBe(5);
      expect(r.lead).toBe(2n);
    });
  }

  it('a follower rejects AppendEntries with a stale term and answers its higher term', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    r.becomeFollower(3, 2n);
    r.step(msg({ type: MessageType.App, from: 2n, to: 1n, term: 2, index: 0, logTerm: 0, entries: [ent(2, 1)] }));
    expect(r.raftLog.lastIndex()).toBe(0);
    const out = readMessages(r);
    expect(out.map((m) => [m.type, m.to, m.term])).toEqual([[MessageType.AppResp, 2n, 3]]);
  });

  it('a leader that hears a higher term in a response steps down', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    r.becomeCandidate();
    r.becomeLeader();
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: 7 }));
    expect(r.state).toBe(StateType.Follower);
    expect(r.term).toBe(7);
  });

  it('a node ignores a vote request with a stale term', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    r.becomeFollower(3, 0n);
    r.step(msg({ type: MessageType.Vote, from: 2n, to: 1n, term: 2, index: 9, logTerm: 2 }));
    expect(readMessages(r)).toHaveLength(0);
    expect(r.vote).toBe(0n);
  });
});

describe('§5.2 leader election', () => {
  it('a follower that hears nothing for an election timeout becomes a candidate and requests votes', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    for (let i = 0; i < 2 * 10; i++) r.tick();
    expect(r.state).toBe(StateType.Candidate);
    expect(r.term).toBe(1);
    expect(r.vote).toBe(1n);
    const votes = readMessages(r).filter((m) => m.type === MessageType.Vote);
    expect(votes.map((m) => m.to).sort()).toEqual(ids(2, 3));
    expect(votes.every((m) => m.term === 1)).toBe(true);
  });

  it('election timeouts are randomized within [electionTimeout, 2*electionTimeout)', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      r.resetRandomizedElectionTimeout();
      seen.add(r.randomizedElectionTimeout);
    }
    for (const t of seen) expect(t >= 10 && t < 20).toBe(true);
    expect(seen.size).toBeGreaterThan(5);
  });

  it('a candidate that wins votes from a majority becomes leader', () => {
    const nt = new Network([null, null, null]);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    expect(nt.peer(1).state).toBe(StateType.Leader);
    expect(nt.peer(2).lead).toBe(1n);
    expect(nt.peer(3).lead).toBe(1n);
  });

  it('a candidate that hears no majority stays candidate; one that is rejected by a majority steps down', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3, 4, 5]));
    hup(r);
    r.step(msg({ type: MessageType.VoteResp, from: 2n, to: 1n, term: 1 }));
    expect(r.state).toBe(StateType.Candidate);
    r.step(msg({ type: MessageType.VoteResp, from: 3n, to: 1n, term: 1, reject: true }));
    r.step(msg({ type: MessageType.VoteResp, from: 4n, to: 1n, term: 1, reject: true }));
    expect(r.state).toBe(StateType.Candidate);
    r.step(msg({ type: MessageType.VoteResp, from: 5n, to: 1n, term: 1, reject: true }));
    expect(r.state).toBe(StateType.Follower);
  });

  it('election safety: a node grants at most one vote per term', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    r.step(msg({ type: MessageType.Vote, from: 2n, to: 1n, term: 1 }));
    r.step(msg({ type: MessageType.Vote, from: 3n, to: 1n, term: 1 }));
    r.step(msg({ type: MessageType.Vote, from: 2n, to: 1n, term: 1 }));
    const resps = readMessages(r);
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      [2n, false],
      [3n, true],
      [2n, false], // a duplicate request from the same candidate is granted again
    ]);
    expect(r.vote).toBe(2n);
  });

  it('a candidate steps down when it receives AppendEntries from a leader of its term', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    hup(r);
    expect(r.state).toBe(StateType.Candidate);
    r.step(msg({ type: MessageType.App, from: 2n, to: 1n, term: r.term }));
    expect(r.state).toBe(StateType.Follower);
    expect(r.lead).toBe(2n);
  });

  it('a leader sends heartbeats every heartbeat interval', () => {
    const r = newTestRaft(1, 10, 2, newStorage([1, 2, 3]));
    r.becomeCandidate();
    r.becomeLeader();
    readMessages(r);
    r.tick();
    expect(readMessages(r)).toHaveLength(0);
    r.tick();
    const hb = readMessages(r);
    expect(hb.map((m) => [m.type, m.to])).toEqual([
      [MessageType.Heartbeat, 2n],
      [MessageType.Heartbeat, 3n],
    ]);
  });

  it('split votes resolve: with randomized timeouts a 5-node cluster elects exactly one leader', () => {
    const nt = new Network([null, null, null, null, null]);
    for (let tick = 0; tick < 100; tick++) {
      for (const p of nt.peers.values()) {
        p.tick();
        nt.send(...readMessages(p));
      }
      const leaders = [...nt.peers.values()].filter((p) => p.state === StateType.Leader);
      if (leaders.length > 0) {
        expect(leaders).toHaveLength(1);
        return;
      }
    }
    throw new Error('no leader elected');
  });
});

describe('§5.3 log replication', () => {
  it('a new leader appends an empty entry of its term', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]));
    r.becomeCandidate();
    r.becomeLeader();
    const last = r.raftLog.lastIndex();
    expect(last).toBe(1);
    expect(r.raftLog.term(last)).toBe(1);
    expect(r.raftLog.entries(1, 1e9)[0].data.byteLength).toBe(0);
  });

  it('the leader commits an entry once a majority has replicated it, and followers learn it', () => {
    const nt = new Network([null, null, null]);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(3);
    propose(nt.peer(1), 'x');
    nt.send(...readMessages(nt.peer(1)));
    expect(nt.peer(1).raftLog.committed).toBe(2);
    expect(nt.peer(3).raftLog.lastIndex()).toBe(1);
    // the follower in the majority learns the commit with the next append or heartbeat
    nt.send(msg({ type: MessageType.Beat, from: 1n, to: 1n }));
    expect(nt.peer(2).raftLog.committed).toBe(2);
  });

  it('a follower rejects AppendEntries when its log lacks the previous entry', () => {
    const r = newTestRaft(2, 10, 1, storageWithTerms([1, 2, 3], [1, 2]));
    r.becomeFollower(2, 1n);
    r.step(msg({ type: MessageType.App, from: 1n, to: 2n, term: 2, index: 2, logTerm: 3, entries: [ent(3, 3)] }));
    const [resp] = readMessages(r);
    expect(resp.reject).toBe(true);
    expect(r.raftLog.lastIndex()).toBe(2);
  });

  it('a follower deletes a conflicting suffix and appends the leader entries', () => {
    const r = newTestRaft(2, 10, 1, storageWithTerms([1, 2, 3], [1, 1, 1]));
    r.becomeFollower(2, 1n);
    r.step(msg({ type: MessageType.App, from: 1n, to: 2n, term: 2, index: 1, logTerm: 1, entries: [ent(2, 2), ent(2, 3), ent(2, 4)] }));
    expect(logTerms(r)).toEqual([1, 2, 2, 2]);
    const [resp] = readMessages(r);
    expect(resp.reject).toBe(false);
    expect(resp.index).toBe(4);
  });

  it('an AppendEntries already contained in the log changes nothing (idempotent)', () => {
    const r = newTestRaft(2, 10, 1, storageWithTerms([1, 2, 3], [1, 2, 2]));
    r.becomeFollower(2, 1n);
    r.step(msg({ type: MessageType.App, from: 1n, to: 2n, term: 2, index: 1, logTerm: 1, entries: [ent(2, 2)] }));
    expect(logTerms(r)).toEqual([1, 2, 2]);
  });

  it('a rejection carries a hint that lets the leader skip a whole conflicting term', () => {
    // Follower has many entries of term 2 the leader does not have.
    const follower = newTestRaft(2, 10, 1, storageWithTerms([1, 2], [1, 2, 2, 2, 2, 2, 2, 2]));
    follower.becomeFollower(5, 1n);
    follower.step(msg({ type: MessageType.App, from: 1n, to: 2n, term: 5, index: 8, logTerm: 4 }));
    const [resp] = readMessages(follower);
    expect(resp.reject).toBe(true);
    expect([resp.rejectHint, resp.logTerm]).toEqual([8, 2]);
    // The leader's log: term 1 then terms 3,4; entries of term <= 2 end at index 1.
    const leader = newTestRaft(1, 10, 1, storageWithTerms([1, 2], [1, 3, 3, 4, 4, 4, 4, 4]));
    leader.loadState({ term: 4, vote: 1n, commit: 1 });
    leader.becomeCandidate();
    leader.becomeLeader();
    readMessages(leader);
    leader.trk.progress.get(2n)!.next = 9;
    leader.step({ ...resp, to: 1n, term: leader.term, index: 8 });
    const [probe] = readMessages(leader);
    expect(probe.type).toBe(MessageType.App);
    expect(probe.index).toBe(1); // jumped straight to the last possible match
  });
});

describe('figure 7: a new leader repairs every kind of follower log', () => {
  const leaderTerms = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const cases: Record<string, number[]> = {
    'a (missing entries)': [1, 1, 1, 4, 4, 5, 5, 6, 6],
    'b (missing many entries)': [1, 1, 1, 4],
    'c (extra uncommitted entry of the leader term)': [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    'd (extra entries of a later term)': [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    'e (missing and extra entries)': [1, 1, 1, 4, 4, 4, 4],
    'f (extra entries of old terms)': [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, followerTerms] of Object.entries(cases)) {
    it(`follower ${name} ends with the leader log`, () => {
      const term = 8;
      const lead = newTestRaft(1, 10, 1, storageWithTerms([1, 2, 3], leaderTerms));
      lead.loadState({ term, vote: None0(), commit: lead.raftLog.lastIndex() });
      const follower = newTestRaft(2, 10, 1, storageWithTerms([1, 2, 3], followerTerms));
      follower.loadState({ term: term - 1, vote: None0(), commit: 0 });
      // Node 3 is absent; its vote is injected (the follower may refuse its own vote).
      const nt = new Network([lead, follower]);
      nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
      nt.send(msg({ type: MessageType.VoteResp, from: 3n, to: 1n, term: term + 1 }));
      expect(lead.state).toBe(StateType.Leader);
      propose(lead, '');
      nt.send(...readMessages(lead));
      expect(logTerms(follower)).toEqual(logTerms(lead));
      expect(follower.raftLog.committed).toBe(lead.raftLog.committed);
    });
  }
});

function None0(): NodeId {
  return 0n;
}

describe('§5.4 safety', () => {
  it('a voter rejects a candidate whose log is less up to date (§5.4.1)', () => {
    const r = newTestRaft(1, 10, 1, storageWithTerms([1, 2, 3], [1, 2, 2]));
    // Lower last term.
    r.step(msg({ type: MessageType.Vote, from: 2n, to: 1n, term: 3, index: 5, logTerm: 1 }));
    // Same last term, shorter log.
    r.step(msg({ type: MessageType.Vote, from: 3n, to: 1n, term: 4, index: 2, logTerm: 2 }));
    expect(readMessages(r).map((m) => m.reject)).toEqual([true, true]);
    // Same last term, same length: granted.
    r.step(msg({ type: MessageType.Vote, from: 3n, to: 1n, term: 5, index: 3, logTerm: 2 }));
    expect(readMessages(r).map((m) => m.reject)).toEqual([false]);
  });

  it('figure 8: a leader does not commit an entry of an earlier term by counting replicas', () => {
    const r = newTestRaft(1, 10, 1, storageWithTerms([1, 2, 3], [1, 2]));
    r.loadState({ term: 2, vote: 0n, commit: 0 });
    r.becomeCandidate();
    r.becomeLeader(); // term 3, empty entry at index 3
    readMessages(r);
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: 3, index: 2 }));
    expect(r.raftLog.committed).toBe(0);
  });

  it('figure 8: entries of earlier terms commit together with an entry of the current term', () => {
    const r = newTestRaft(1, 10, 1, storageWithTerms([1, 2, 3], [1, 2]));
    r.loadState({ term: 2, vote: 0n, commit: 0 });
    r.becomeCandidate();
    r.becomeLeader();
    readMessages(r);
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: 3, index: 3 }));
    expect(r.raftLog.committed).toBe(3);
  });

  it('figure 8 scenario: an uncommitted old-term entry is overwritten by a leader with a higher last term', () => {
    const nt = new Network([null, null, null, null, null]);
    // (a) S1 leads term 1 and replicates index 2 only to S2: not committed.
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(3);
    nt.isolate(4);
    nt.isolate(5);
    propose(nt.peer(1), 'old');
    nt.send(...readMessages(nt.peer(1)));
    expect(nt.peer(1).raftLog.committed).toBe(1);
    // (b) S1 crashes; S5 wins term 2 with S3 and S4 but its entry at index 2 stays local.
    nt.recover();
    nt.isolate(1);
    nt.cut(5, 2);
    nt.ignore(MessageType.App);
    nt.send(msg({ type: MessageType.Hup, from: 5n, to: 5n }));
    expect(nt.peer(5).state).toBe(StateType.Leader);
    expect(logTerms(nt.peer(5))).toEqual([1, 2]);
    // (d) S5 restarts and is elected again (its last term 2 beats S2's 1): it overwrites
    // index 2 on S2, which proves index 2 of term 1 was never safe to commit.
    nt.recover();
    nt.isolate(1);
    nt.peer(5).becomeFollower(2, 0n);
    nt.send(msg({ type: MessageType.Hup, from: 5n, to: 5n }));
    expect(nt.peer(5).state).toBe(StateType.Leader);
    expect(logTerms(nt.peer(2))).toEqual([1, 2, 3]);
    expect(nt.peer(2).raftLog.committed).toBe(3);
  });

  it('leader completeness: a node missing a committed entry cannot win an election', () => {
    const nt = new Network([null, null, null]);
    nt.send(msg({ type: MessageType.Hup, from: 1n, to: 1n }));
    nt.isolate(3);
    propose(nt.peer(1), 'committed');
    nt.send(...readMessages(nt.peer(1)));
    expect(nt.peer(1).raftLog.committed).toBe(2);
    nt.recover();
    nt.isolate(1);
    nt.send(msg({ type: MessageType.Hup, from: 3n, to: 3n }));
    expect(nt.peer(3).state).not.toBe(StateType.Leader);
    nt.send(msg({ type: MessageType.Hup, from: 2n, to: 2n }));
    expect(nt.peer(2).state).toBe(StateType.Leader);
  });
});

describe('flow control', () => {
  function replicatingLeader(opts = {}) {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2]), opts);
    r.becomeCandidate();
    r.becomeLeader();
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: 1 }));
    readMessages(r);
    return r;
  }

  it('the leader batches entries into one append up to maxSizePerMsg', () => {
    const r = replicatingLeader({ maxSizePerMsg: 3 * (100 + 21) });
    r.trk.progress.get(2n)!.becomeProbe(); // hold sends while we append
    r.trk.progress.get(2n)!.probeSent = true;
    for (let i = 0; i < 10; i++) r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, 'x'.repeat(100))] }));
    readMessages(r);
    r.trk.progress.get(2n)!.becomeReplicate();
    r.sendAppend(2n);
    const [app] = readMessages(r);
    expect(app.entries).toHaveLength(3);
  });

  it('the leader stops sending to a follower once maxInflightMsgs appends are unacknowledged', () => {
    const r = replicatingLeader({ maxInflightMsgs: 3 });
    for (let i = 0; i < 6; i++) r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, `e${i}`)] }));
    const apps = readMessages(r).filter((m) => m.type === MessageType.App && m.to === 2n);
    expect(apps).toHaveLength(3);
    // An acknowledgement frees the window and the rest goes out.
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: apps[2].index + 1 }));
    const more = readMessages(r).filter((m) => m.type === MessageType.App && m.entries.length > 0);
    expect(more.flatMap((m) => m.entries).map((e) => e.index)).toEqual([5, 6, 7]);
  });

  it('with batchAppends, the proposals stepped in before the messages are read reach each follower in one append', () => {
    const r = newTestRaft(1, 10, 1, newStorage([1, 2, 3]), { batchAppends: true });
    r.becomeCandidate();
    r.becomeLeader();
    for (const f of [2n, 3n]) r.step(msg({ type: MessageType.AppResp, from: f, to: 1n, term: r.term, index: 1 }));
    readMessages(r);
    // The leader's own proposal and two forwarded by followers, in one turn.
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, 'own')] }));
    r.step(msg({ type: MessageType.Prop, from: 2n, entries: [ent(0, 0, 'f2a'), ent(0, 0, 'f2b')] }));
    r.step(msg({ type: MessageType.Prop, from: 3n, entries: [ent(0, 0, 'f3')] }));
    expect(r.msgs).toHaveLength(0); // held until the messages are taken
    const apps = readMessages(r).filter((m) => m.type === MessageType.App);
    expect(apps.map((m) => m.to).sort()).toEqual([2n, 3n]);
    for (const a of apps) expect(a.entries.map((e) => new TextDecoder().decode(e.data))).toEqual(['own', 'f2a', 'f2b', 'f3']);
    // A leader that stepped down before its appends went out sends none.
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, 'late')] }));
    r.becomeFollower(r.term + 1, 2n);
    expect(readMessages(r).filter((m) => m.type === MessageType.App)).toHaveLength(0);
  });

  it('a follower in probe state receives one append per round trip', () => {
    const r = replicatingLeader();
    r.trk.progress.get(2n)!.becomeProbe();
    for (let i = 0; i < 3; i++) r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, `p${i}`)] }));
    expect(readMessages(r).filter((m) => m.type === MessageType.App)).toHaveLength(1);
  });
});
