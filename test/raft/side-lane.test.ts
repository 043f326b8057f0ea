// What a caller may take out while a Ready is outstanding (its fdatasync running): messages
// that promise nothing, ReadIndex answers, and committed entries that were durable before
// that Ready. RaftLog's side lane uses these on a follower.

import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/raft/rand';
import { RawNode, type Ready } from '../../src/raft/rawnode';
import { EntryType, type Entry, type Message, MessageType, makeMessage } from '../../src/raft/types';
import { dec, enc, ent, newStorage } from './helpers';

// The caller's part of a Ready as RaftLog does it: entries go into storage when the Ready
// is taken; advance() after the fdatasync says they are stable.
class Follower {
  readonly storage = newStorage([1, 2, 3]);
  readonly node = new RawNode({ id: 2n, electionTick: 10, heartbeatTick: 1, storage: this.storage, random: new SeededRandom(2) });

  ready(): Ready {
    const rd = this.node.ready();
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    return rd;
  }
}

const app = (index: number, logTerm: number, entries: Entry[], commit: number): Message =>
  makeMessage({ type: MessageType.App, from: 1n, to: 2n, term: 1, index, logTerm, entries, commit });

const isProp = (m: Message): boolean => m.type === MessageType.Prop;
const indexes = (es: Entry[]): number[] => es.map((e) => e.index);

/** A follower of leader 1 in term 1 with entries 1..3 persisted and advanced, nothing committed. */
function withStableLog(): Follower {
  const f = new Follower();
  f.node.step(app(0, 0, [ent(1, 1, 'a'), ent(1, 2, 'b'), ent(1, 3, 'c')], 0));
  f.node.advance(f.ready());
  return f;
}

describe('RawNode side lane (while a Ready is outstanding)', () => {
  it('hands out committed entries durable before the outstanding Ready, never its own, and advance() counts them applied', () => {
    const f = withStableLog();
    const node = f.node;
    node.step(app(3, 1, [ent(1, 4, 'd'), ent(1, 5, 'e')], 0));
    const rd = f.ready(); // entries 4..5, their fdatasync "running"
    expect(indexes(rd.entries)).toEqual([4, 5]);
    node.step(app(5, 1, [], 5)); // the leader says 1..5 are committed
    expect(indexes(node.takeDurableCommitted())).toEqual([1, 2, 3]); // 4 and 5 are not on this disk yet
    expect(node.takeDurableCommitted()).toEqual([]); // handed out once
    node.advance(rd);
    const next = f.ready();
    expect(indexes(next.committedEntries)).toEqual([4, 5]);
    expect(next.committedEntries.map((e) => dec(e.data))).toEqual(['d', 'e']);
    node.advance(next);
    expect(node.status().applied).toBe(5);
  });

  it('starts after the committed entries of the outstanding Ready', () => {
    const f = withStableLog();
    const node = f.node;
    node.step(app(3, 1, [ent(1, 4, 'd')], 2)); // commits 1..2 and brings 4
    const rd = f.ready();
    expect(indexes(rd.committedEntries)).toEqual([1, 2]);
    node.step(app(4, 1, [], 4));
    expect(indexes(node.takeDurableCommitted())).toEqual([3]);
    node.advance(rd);
    expect(indexes(f.ready().committedEntries)).toEqual([4]);
  });

  it('stops before a ConfChange entry, which waits for its Ready', () => {
    const f = new Follower();
    const node = f.node;
    const cc: Entry = { term: 1, index: 2, type: EntryType.ConfChange, data: new Uint8Array() };
    node.step(app(0, 0, [ent(1, 1, 'a'), cc, ent(1, 3, 'c')], 0));
    node.advance(f.ready());
    node.step(app(3, 1, [ent(1, 4, 'd')], 0));
    const rd = f.ready();
    node.step(app(4, 1, [], 3));
    expect(indexes(node.takeDurableCommitted())).toEqual([1]);
    expect(node.takeDurableCommitted()).toEqual([]);
    node.advance(rd);
    expect(indexes(f.ready().committedEntries)).toEqual([2, 3]);
  });

  it('hands out nothing without an outstanding Ready', () => {
    const f = withStableLog();
    const node = f.node;
    node.step(app(3, 1, [], 3));
    expect(node.takeDurableCommitted()).toEqual([]);
    expect(indexes(f.ready().committedEntries)).toEqual([1, 2, 3]);
  });

  it('takes forwarded proposals out of the next Ready and leaves the other messages in it', () => {
    const f = withStableLog();
    const node = f.node;
    node.step(app(3, 1, [ent(1, 4, 'd')], 0));
    const rd = f.ready();
    node.propose(enc('x'));
    node.step(app(4, 1, [], 0)); // answered with an AppResp, which must wait for the fdatasync
    const taken = node.takeMessages(isProp);
    expect(taken.map((m) => [m.type, m.to])).toEqual([[MessageType.Prop, 1n]]);
    expect(dec(taken[0].entries[0].data)).toBe('x');
    node.advance(rd);
    const next = f.ready();
    expect(next.messages.map((m) => m.type)).toEqual([MessageType.AppResp]);
  });

  it('takes ReadIndex answers out of the next Ready', () => {
    const f = withStableLog();
    const node = f.node;
    node.step(app(3, 1, [ent(1, 4, 'd')], 0));
    const rd = f.ready();
    const ctx = enc('read-1');
    node.step(makeMessage({ type: MessageType.ReadIndexResp, from: 1n, to: 2n, term: 1, index: 3, context: ctx }));
    expect(node.takeReadStates()).toEqual([{ index: 3, requestCtx: ctx }]);
    node.advance(rd);
    expect(f.ready().readStates).toEqual([]);
  });
});
