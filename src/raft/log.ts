// The raft log: durable entries (Storage) followed by not-yet-persisted ones (Unstable),
// plus the two cursors of the paper: commitIndex (committed) and lastApplied (applied).
//
// Invariant: applied <= committed <= lastIndex, and firstIndex - 1 <= committed.

import { assert } from './assert';
import { ErrCompacted, ErrUnavailable } from './errors';
import { Unstable } from './log-unstable';
import type { Storage } from './storage';
import type { Entry, Snapshot } from './types';
import { limitSize, noLimit } from './util';

export class RaftLog {
  readonly storage: Storage;
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum (commitIndex in the paper). */
  committed: number;
  /** Highest index the application has applied (lastApplied in the paper). */
  applied: number;
  /** Bound on the bytes of committed entries handed out in one Ready. */
  readonly maxNextEntsSize: number;

  constructor(storage: Storage, maxNextEntsSize: number = noLimit) {
    this.storage = storage;
    this.maxNextEntsSize = maxNextEntsSize;
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    // Everything up to the snapshot is committed and applied by definition.
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
  }

  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, unstable.offset=${this.unstable.offset}, len(unstable.entries)=${this.unstable.entries.length}`;
  }

  /**
   * The follower side of AppendEntries: if our entry at `index` has term `logTerm`,
   * append `ents` (truncating a conflicting suffix) and advance commit. Returns the
   * index of the last new entry, or -1 if the consistency check failed.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number {
    if (!this.matchTerm(index, logTerm)) return -1;
    const lastNewIndex = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, () => `entry ${ci} conflict with committed entry [committed(${this.committed})]`);
      const offset = index + 1;
      assert(ci - offset <= ents.length, () => `index ${ci - offset} is out of range [${ents.length}]`);
      this.append(ents.slice(ci - offset));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0].index - 1;
    assert(after >= this.committed, () => `after(${after}) is out of range [committed(${this.committed})]`);
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry of `ents` that is new or conflicts with an existing
   * entry (same index, different term); 0 if all are already present.
   */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term. Used by the
   * fast-backtracking hint: every entry above it is known not to match a log whose
   * entry at `index` has term `term` (log matching property).
   */
  findConflictByTerm(index: number, term: number): [number, number] {
    for (; index > 0; index--) {
      let ourTerm: number;
      try {
        ourTerm = this.term(index);
      } catch {
        return [index, 0];
      }
      if (ourTerm <= term) return [index, ourTerm];
    }
    return [0, 0];
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  /** Committed entries not yet applied, bounded by maxNextEntsSize. */
  nextEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) return this.slice(off, this.committed + 1, this.maxNextEntsSize);
    return [];
  }

  hasNextEnts(): boolean {
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== null && this.unstable.snapshot.metadata.index !== 0;
  }

  snapshot(): Snapshot {
    if (this.unstable.snapshot) return this.unstable.snapshot;
    return this.storage.snapshot();
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  commitTo(toCommit: number): void {
    // Never decrease commit.
    if (this.committed < toCommit) {
      assert(
        this.lastIndex() >= toCommit,
        () => `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`,
      );
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    assert(
      this.committed >= i && i >= this.applied,
      () => `applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
    );
    this.applied = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /**
   * Term of entry i. 0 outside [firstIndex-1, lastIndex] (as etcd-io/raft does: "no such
   * entry" compares below every real term). Throws only if storage loses an entry in
   * between, which is a broken invariant.
   */
  term(i: number): number {
    const dummyIndex = this.firstIndex() - 1;
    if (i < dummyIndex || i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  /** Entries from i on, at most maxSize bytes. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), noLimit);
  }

  /**
   * §5.4.1: a candidate's log is at least as up-to-date as ours if its last term is
   * greater, or equal with a last index at least ours.
   */
  isUpToDate(lastIndex: number, term: number): boolean {
    const ourLastTerm = this.lastTerm();
    return term > ourLastTerm || (term === ourLastTerm && lastIndex >= this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    let t: number;
    try {
      t = this.term(i);
    } catch {
      return false;
    }
    // term() answers 0 for an index we do not have; only index 0 legitimately has term 0.
    if (t === 0 && i !== 0 && (i < this.firstIndex() - 1 || i > this.lastIndex())) return false;
    return t === term;
  }

  /**
   * §5.4.2: the leader commits only an entry of its own term by counting replicas;
   * earlier entries are committed indirectly with it (figure 8).
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  termOrZero(i: number): number {
    try {
      return this.term(i);
    } catch {
      return 0;
    }
  }

  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries in [lo, hi), at most maxSize bytes (at least one). Throws ErrCompacted if lo < firstIndex. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      const storedHi = Math.min(hi, uoff);
      let stored: Entry[];
      try {
        stored = this.storage.entries(lo, storedHi, maxSize);
      } catch (err) {
        if (err === ErrCompacted) throw err;
        if (err === ErrUnavailable) throw new Error(`entries[${lo}:${storedHi}) is unavailable from storage`);
        throw err;
      }
      // Hit the size limit inside storage: done.
      if (stored.length < storedHi - lo) return stored;
      ents = stored;
    }
    if (hi > uoff) {
      const unstable = this.unstable.slice(Math.max(lo, uoff), hi);
      ents = ents.length > 0 ? ents.concat(unstable) : unstable;
    }
    return limitSize(ents, maxSize);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    assert(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw ErrCompacted;
    const length = this.lastIndex() + 1 - fi;
    assert(hi <= fi + length, () => `slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }
}
