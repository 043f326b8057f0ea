// Unit tests of the building blocks: unstable log, inflights, progress, quorum, codec.

import { describe, expect, it } from 'vitest';
import {
  DecodeError,
  decodeConfChange,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  encodeConfChange,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
} from '../../src/raft/codec';
import { Inflights } from '../../src/raft/inflights';
import { Unstable } from '../../src/raft/log-unstable';
import { Progress, ProgressState } from '../../src/raft/progress';
import { VoteResult, committedIndex, voteResult } from '../../src/raft/quorum';
import { SeededRandom } from '../../src/raft/rand';
import { ConfChangeType, EntryType, MessageType, makeMessage } from '../../src/raft/types';
import { enc, ent, ids } from './helpers';

describe('unstable log', () => {
  it('stableTo drops persisted entries but ignores a stale acknowledgement of a replaced entry', () => {
    const u = new Unstable(5);
    u.truncateAndAppend([ent(1, 5), ent(1, 6), ent(1, 7)]);
    u.stableTo(5, 1);
    expect(u.offset).toBe(6);
    u.truncateAndAppend([ent(2, 6)]); // replaces 6 and 7
    u.stableTo(6, 1); // acknowledges the old entry 6
    expect(u.entries.map((e) => e.term)).toEqual([2]);
  });

  it('truncateAndAppend before the offset replaces everything unstable', () => {
    const u = new Unstable(5);
    u.truncateAndAppend([ent(1, 5), ent(1, 6)]);
    u.truncateAndAppend([ent(2, 4)]);
    expect(u.offset).toBe(4);
    expect(u.entries.map((e) => e.index)).toEqual([4]);
  });
});

describe('inflights', () => {
  it('is full at its capacity and frees acknowledged messages in order', () => {
    const f = new Inflights(3);
    f.add(2);
    f.add(4);
    f.add(6);
    expect(f.full()).toBe(true);
    expect(() => f.add(8)).toThrow();
    f.freeLE(4);
    expect(f.size()).toBe(1);
    f.add(8);
    f.add(10);
    f.freeLE(9);
    expect(f.size()).toBe(1);
    f.freeFirstOne();
    expect(f.size()).toBe(0);
  });
});

describe('progress', () => {
  it('a stale rejection in replicate state is ignored; a fresh one falls back to match + 1', () => {
    const pr = new Progress(11, 10, false);
    pr.maybeUpdate(10);
    pr.becomeReplicate();
    pr.optimisticUpdate(15);
    expect(pr.maybeDecrTo(9, 9)).toBe(false);
    expect(pr.maybeDecrTo(13, 12)).toBe(true);
    expect(pr.next).toBe(11);
  });

  it('in probe state only the answer to the latest probe moves next, down to the hint', () => {
    const pr = new Progress(10, 10, false);
    expect(pr.maybeDecrTo(5, 3)).toBe(false); // not the last probe (next-1 = 9)
    expect(pr.maybeDecrTo(9, 3)).toBe(true);
    expect(pr.next).toBe(4);
    expect(pr.state).toBe(ProgressState.Probe);
  });

  it('is paused while a probe is unanswered, while inflights are full, and during a snapshot', () => {
    const pr = new Progress(1, 1, false);
    pr.probeSent = true;
    expect(pr.isPaused()).toBe(true);
    pr.becomeReplicate();
    expect(pr.isPaused()).toBe(false);
    pr.inflights.add(1);
    expect(pr.isPaused()).toBe(true);
    pr.becomeSnapshot(10);
    expect(pr.isPaused()).toBe(true);
  });
});

describe('quorum', () => {
  it('the committed index is the highest index matched by a majority', () => {
    const m = new Map([
      [1n, 5],
      [2n, 3],
      [3n, 9],
      [4n, 1],
      [5n, 3],
    ]);
    expect(committedIndex(new Set(ids(1, 2, 3, 4, 5)), (id) => m.get(id))).toBe(3);
    expect(committedIndex(new Set(ids(1, 3)), (id) => m.get(id))).toBe(5);
    expect(committedIndex(new Set(), () => 0)).toBe(0);
  });

  it('a vote is won by a majority, lost once a majority is impossible, else pending', () => {
    const voters = new Set(ids(1, 2, 3));
    expect(voteResult(voters, new Map([[1n, true]]))).toBe(VoteResult.Pending);
    expect(voteResult(voters, new Map([[1n, true], [2n, true]]))).toBe(VoteResult.Won);
    expect(voteResult(voters, new Map([[1n, true], [2n, false], [3n, false]]))).toBe(VoteResult.Lost);
  });
});

describe('codec (format version 1)', () => {
  it('round-trips entries, hard states and conf changes with full uint64 ids', () => {
    const e = { term: 2 ** 40, index: Number.MAX_SAFE_INTEGER, type: EntryType.ConfChange, data: enc('hello') };
    expect(decodeEntry(encodeEntry(e))).toEqual(e);
    const hs = { term: 7, vote: 0xffff_ffff_ffff_fffen, commit: 42 };
    expect(decodeHardState(encodeHardState(hs))).toEqual(hs);
    const cc = { type: ConfChangeType.AddLearnerNode, nodeId: 18446744073709551615n, context: enc('ctx') };
    expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
  });

  it('round-trips a message with entries and a snapshot', () => {
    const m = makeMessage({
      type: MessageType.App,
      from: 1n,
      to: 0x8000_0000_0000_0001n,
      term: 3,
      logTerm: 2,
      index: 10,
      commit: 9,
      reject: true,
      rejectHint: 4,
      context: enc('c'),
      entries: [ent(3, 11, 'a'), ent(3, 12, '')],
      snapshot: { data: enc('state'), metadata: { index: 9, term: 2, confState: { voters: ids(1, 2), learners: ids(3) } } },
    });
    expect(decodeMessage(encodeMessage(m))).toEqual(m);
    expect(decodeSnapshot(encodeSnapshot(m.snapshot!))).toEqual(m.snapshot);
  });

  it('rejects an unknown version, truncated input and trailing bytes', () => {
    const b = encodeHardState({ term: 1, vote: 1n, commit: 1 });
    const wrongVersion = b.slice();
    wrongVersion[0] = 2;
    expect(() => decodeHardState(wrongVersion)).toThrow(DecodeError);
    expect(() => decodeHardState(b.slice(0, b.length - 1))).toThrow(DecodeError);
    expect(() => decodeHardState(new Uint8Array([...b, 0]))).toThrow(DecodeError);
  });

  it('decodes random garbage to an error, never to a crash or a wrong type', () => {
    const rand = new SeededRandom(7);
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(rand.intn(80));
      for (let j = 0; j < b.length; j++) b[j] = rand.intn(256);
      b[0] = 1;
      try {
        decodeMessage(b);
      } catch (e) {
        expect(e).toBeInstanceOf(DecodeError);
      }
    }
  });
});
