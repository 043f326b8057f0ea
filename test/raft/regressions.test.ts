// Bugs found by the simulator, each pinned down as a scenario.

import { describe, expect, it } from 'vitest';
import { ProgressState } from '../../src/raft/progress';
import { MemoryStorage } from '../../src/raft/storage';
import { MessageType } from '../../src/raft/types';
import { ent, ids, msg, newStorage, newTestRaft, readMessages } from './helpers';

describe('regressions found by the simulator', () => {
  it('a heartbeat response frees a full inflight window, so appends lost in flight are resent', () => {
    // Liveness failure: the leader's window to a follower filled with appends that were
    // all lost; it never sent again and the follower never caught up.
    const r = newTestRaft(1, 10, 1, newStorage([1, 2]), { maxInflightMsgs: 2 });
    r.becomeCandidate();
    r.becomeLeader();
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: 1 }));
    const pr = r.trk.progress.get(2n)!;
    expect(pr.state).toBe(ProgressState.Replicate);
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, 'a')] }));
    r.step(msg({ type: MessageType.Prop, from: 1n, entries: [ent(0, 0, 'b')] }));
    expect(pr.inflights.full()).toBe(true);
    readMessages(r); // both appends are lost
    r.step(msg({ type: MessageType.HeartbeatResp, from: 2n, to: 1n, term: r.term }));
    const resent = readMessages(r).filter((m) => m.type === MessageType.App);
    expect(resent).toHaveLength(1);
  });

  it('a follower that cannot use a snapshot does not make the leader resend it in a loop', () => {
    // The follower (not in the snapshot's configuration) answered with index 0 = its
    // match; the "probe answered at match" rule moved it to Replicate, whose next
    // index was compacted, so the leader resent the snapshot, forever, within one tick.
    const st = new MemoryStorage({ voters: ids(1, 2), learners: [] });
    st.applySnapshot({ data: new Uint8Array(), metadata: { index: 10, term: 1, confState: { voters: ids(1, 2), learners: [] } } });
    const r = newTestRaft(1, 10, 1, st);
    r.becomeCandidate();
    r.becomeLeader();
    readMessages(r);
    const pr = r.trk.progress.get(2n)!;
    pr.becomeSnapshot(10);
    r.step(msg({ type: MessageType.SnapStatus, from: 2n, to: 1n }));
    r.step(msg({ type: MessageType.AppResp, from: 2n, to: 1n, term: r.term, index: 0 }));
    expect(readMessages(r).filter((m) => m.type === MessageType.Snap)).toHaveLength(0);
    expect(pr.state).toBe(ProgressState.Probe);
  });

  it('a restarted node with a log kept below its snapshot resumes applying after the snapshot', () => {
    // The simulator's application restarted from its snapshot while raft replayed from
    // the (older) compaction point; Config.applied tells raft where the state is.
    const st = newStorage([1]);
    st.append([ent(1, 1), ent(1, 2), ent(1, 3), ent(1, 4)]);
    st.setHardState({ term: 1, vote: 1n, commit: 4 });
    st.createSnapshot(3, { voters: ids(1), learners: [] }, new Uint8Array());
    st.compact(1);
    const r = newTestRaft(1, 10, 1, st, { applied: 3 });
    expect(r.raftLog.nextEnts().map((e) => e.index)).toEqual([4]);
  });

  it('a node stranded at a higher term with a stale configuration is reached by the leader', () => {
    // Without pre-vote and check-quorum, node 3 missed the changes that made 1, 2, 3 the
    // members, campaigned to its old peers (4, 5: gone) and ran its term up. It ignored
    // the leader's lower-term heartbeats and the leader never heard its term: stuck.
    const r3 = newTestRaft(3, 10, 1, newStorage([3, 4, 5]));
    r3.becomeFollower(9, 0n);
    r3.step(msg({ type: MessageType.Heartbeat, from: 1n, to: 3n, term: 2 }));
    const out = readMessages(r3);
    expect(out.map((m) => [m.type, m.to, m.term])).toEqual([[MessageType.AppResp, 1n, 9]]);
  });
});
