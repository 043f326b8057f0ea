// Log compaction and snapshot installation (§7).

import { describe, expect, it } from 'vitest';
import { ErrCompacted, ErrSnapshotTemporarilyUnavailable } from '../../src/raft/errors';
import { ProgressState } from '../../src/raft/progress';
import { MemoryStorage } from '../../src/raft/storage';
import { MessageType, type Snapshot, StateType } from '../../src/raft/types';
import { Cluster } from './cluster';
import { enc, ent, ids, logTerms, msg, newStorage, newTestRaft, readMessages } from './helpers';

function snap(index: number, term: number, voters: number[]): Snapshot {
  return { data: enc('app'), metadata: { index, term, confState: { voters: ids(...voters), learners: [] } } };
}

/** A leader whose storage is compacted up to index 10 (snapshot 10/1). */
function compactedLeader() {
  const st = new MemoryStorage({ voters: ids(1, 2), learners: [] });
  st.applySnapshot(snap(10, 1, [1, 2]));
  const r = newTestRaft(1, 10, 1, st);
  r.becomeCandidate();
  r.becomeLeader();
  readMessages(r);
  return r;
}

describe('storage compaction', () => {
  it('compaction discards entries up to the compaction index and reports them compacted', () => {
    const st = new MemoryStorage();
    st.append([ent(1, 1), ent(1, 2), ent(2, 3), ent(2, 4)]);
    st.compact(2);
    expect(st.firstIndex()).toBe(3);
    expect(st.term(2)).toBe(1); // the dummy entry keeps the term of the compaction point
    expect(() => st.term(1)).toThrow(ErrCompacted);
    expect(() => st.entries(2, 4, 1e9)).toThrow(ErrCompacted);
    expect(st.entries(3, 5, 1e9).map((e) => e.index)).toEqual([3, 4]);
  });

  it('entries are returned up to a size limit but always at least one', () => {
    const st = new MemoryStorage();
    st.append([ent(1, 1, 'x'.repeat(100)), ent(1, 2, 'y'.repeat(100)), ent(1, 3)]);
    expect(st.entries(1, 4, 10)).toHaveLength(1);
    expect(st.entries(1, 4, 250)).toHaveLength(2);
  });

  it('appending over a suffix replaces the conflicting entries', () => {
    const st = new MemoryStorage();
    st.append([ent(1, 1), ent(1, 2), ent(1, 3)]);
    st.append([ent(2, 2)]);
    expect(st.lastIndex()).toBe(2);
    expect(st.term(2)).toBe(2);
  });
});

describe('leader side', () => {
  it('a leader sends a snapshot to a follower whose next entries were compacted', () => {
    const r = compactedLeader();
    const pr = r.trk.progress.get(2n)!;
    pr.recentActive = true;
    pr.next = 5;
    r.sendAppend(2n);
    const [m] = readMessages(r);
    expect(m.type).toBe(MessageType.Snap);
    expect(m.snapshot!.metadata.index).toBe(10);
    expect(pr.state).toBe(ProgressState.Snapshot);
    expect(pr.pendingSnapshot).toBe(10);
  });

  it('a leader does not send a snapshot to a follower it has not heard from', () => {
    const r = compactedLeader();
    const pr = r.trk.progress.get(2n)!;
    pr.recentActive = false;
    pr.next = 5;
    r.sendAppend(2n);
    expect(readMessages(r)).toHaveLength(0);
  });

  it('a leader whose application is still making a snapshot sends nothing and retries later', () => {
    const r = compactedLeader();
    const st = r.raftLog.storage as MemoryStorage;
    const real = st.snapshot.bind(st);
    let busy = true;
    st.snapshot = () => {
      if (busy) throw ErrSnapshotTemporarilyUnavailable;
      return real();
    };
    const pr = r.trk.progress.get(2n)!;
    pr.recentActive = true;
    pr.next = 5;
    r.sendAppend(2n);
    expect(readMessages(r)).toHaveLength(0);
    expect(pr.state).toBe(ProgressState.Probe);
    busy = false;
    r.step(msg({ type: MessageType.HeartbeatResp, from: 2n, to: 1n, term: r.term }));
    expect(readMessages(r).map((m) => m.type)).toEqual([MessageType.Snap]);
  });

  it('a successful snapshot report moves the follower to probe after the snapshot index', () => {
    const r = compactedLeader();
    const pr = r.trk.progress.get(2n)!;
    pr.becomeSnapshot(10);
    r.step(msg({ type: MessageType.SnapStatus, from: 2n, to: 1n }));
    expect(pr.state).toBe(ProgressState.Probe);
    expect(pr.next).toBe(11);
    expect(pr.probeSent).toBe(true); // waits for an answer before probing
  });

  it('a failed snapshot report returns the follower to probe to retry', () => {
    const r = compactedLeader();
    const pr = r.trk.progress.get(2n)!;
    pr.becomeSnapshot(10);
    r.step(msg({ type: MessageType.SnapStatus, from: 2n, to: 1n, reject: true }));
    expect(pr.state).toBe(ProgressState.Probe);
    expect(pr.pendingSnapshot).toBe(0);
    expect(pr.next).toBe(1);
  });

  it('the follower acknowledging the snapshot index resumes normal replication', () => {
    const r = compactedLeader();
    const pr = r.trk.progress.get(2n)!;
    pr.becomeSnapshot(10);
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: 10 }));
    expect(pr.state).toBe(ProgressState.Replicate);
    expect(pr.match).toBe(10);
    const sent = readMessages(r);
    expect(sent.some((m) => m.type === MessageType.App && m.index === 10)).toBe(true);
  });
});

describe('follower side', () => {
  it('a follower installs a newer snapshot, dropping its log and adopting its configuration', () => {
    const r = newTestRaft(2, 10, 1, newStorage([1, 2]));
    r.becomeFollower(2, 1n);
    r.step(msg({ type: MessageType.Snap, from: 1n, to: 2n, term: 2, snapshot: snap(11, 2, [1, 2, 3]) }));
    expect(r.raftLog.committed).toBe(11);
    expect(r.raftLog.lastIndex()).toBe(11);
    expect(r.raftLog.firstIndex()).toBe(12);
    expect(r.trk.confState().voters).toEqual(ids(1, 2, 3));
    const [resp] = readMessages(r);
    expect([resp.type, resp.index]).toEqual([MessageType.AppResp, 11]);
  });

  it('a follower ignores a snapshot that is not newer than its commit index', () => {
    const st = newStorage([1, 2]);
    st.append([ent(1, 1), ent(1, 2), ent(1, 3)]);
    const r = newTestRaft(2, 10, 1, st);
    r.loadState({ term: 1, vote: 0n, commit: 3 });
    r.becomeFollower(2, 1n);
    r.step(msg({ type: MessageType.Snap, from: 1n, to: 2n, term: 2, snapshot: snap(2, 1, [1, 2]) }));
    expect(r.raftLog.hasPendingSnapshot()).toBe(false);
    expect(logTerms(r)).toEqual([1, 1, 1]);
  });

  it('a follower whose log contains the snapshot last entry only fast-forwards its commit', () => {
    const st = newStorage([1, 2]);
    st.append([ent(1, 1), ent(1, 2), ent(1, 3)]);
    const r = newTestRaft(2, 10, 1, st);
    r.becomeFollower(2, 1n);
    r.step(msg({ type: MessageType.Snap, from: 1n, to: 2n, term: 2, snapshot: snap(2, 1, [1, 2]) }));
    expect(r.raftLog.hasPendingSnapshot()).toBe(false);
    expect(r.raftLog.committed).toBe(2);
    expect(logTerms(r)).toEqual([1, 1, 1]);
  });

  it('a follower ignores a snapshot whose configuration does not include it', () => {
    const r = newTestRaft(2, 10, 1, newStorage([1, 2]));
    r.becomeFollower(2, 1n);
    r.step(msg({ type: MessageType.Snap, from: 1n, to: 2n, term: 2, snapshot: snap(11, 2, [1, 3]) }));
    expect(r.raftLog.committed).toBe(0);
  });

  it('a node with a snapshot waiting to be persisted does not campaign', () => {
    const r = newTestRaft(2, 10, 1, newStorage([1, 2]));
    r.becomeFollower(2, 1n);
    r.step(msg({ type: MessageType.Snap, from: 1n, to: 2n, term: 2, snapshot: snap(11, 2, [1, 2]) }));
    expect(r.promotable()).toBe(false);
    r.step(msg({ type: MessageType.Hup, from: 2n }));
    expect(r.state).toBe(StateType.Follower);
  });
});

describe('end to end', () => {
  it('a follower that missed compacted entries catches up through a snapshot and then by appends', () => {
    const c = new Cluster(3);
    c.campaign(1);
    c.isolate(3);
    for (let i = 0; i < 20; i++) c.propose(1, `v${i}`);
    c.compact(1);
    c.compact(2);
    c.heal();
    c.tick(3);
    const m3 = c.m(3);
    expect(m3.storage.snapshot().metadata.index).toBeGreaterThan(0);
    expect(m3.appliedIndex).toBe(c.m(1).appliedIndex);
    c.propose(1, 'after');
    expect(c.appliedData(3)).toContain('after');
    expect(c.m(3).raft.raftLog.committed).toBe(c.m(1).raft.raftLog.committed);
  });

  it('a restarted node recovers its log, term, vote and commit from storage', () => {
    const c = new Cluster(3);
    c.campaign(1);
    for (let i = 0; i < 5; i++) c.propose(1, `v${i}`);
    const before = c.m(2).raft.hardState();
    c.restart(2n);
    const r2 = c.m(2).raft;
    expect(r2.term).toBe(before.term);
    expect(r2.vote).toBe(before.vote);
    expect(r2.raftLog.committed).toBe(before.commit);
    expect(r2.raftLog.lastIndex()).toBe(c.m(1).raft.raftLog.lastIndex());
  });
});
