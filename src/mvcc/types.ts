// The vocabulary of the multi-version store. Revisions are JS numbers: they are int64 on
// the wire, and a store would need 2^53 writes to lose precision; `assertRevision` guards it.
// Lease IDs are full int64 values and stay bigint.

/** A point in the store's history: `main` is the store revision of one write transaction,
 *  `sub` orders the changes inside it. */
export interface Revision {
  readonly main: number;
  readonly sub: number;
}

export interface KeyValue {
  key: Buffer;
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: bigint;
}

export const enum EventType {
  Put = 0,
  Delete = 1,
}

/** One change of one write transaction, as watchers see it. For a delete, `kv` holds the key,
 *  the tombstone's mod revision and an empty value. */
export interface WatchEvent {
  type: EventType;
  kv: KeyValue;
  prevKv?: KeyValue;
}

export interface RangeOptions {
  /** Read at this revision; 0 or less means the current one. */
  revision?: number;
  /** At most this many key-values (0 = no limit). `count` still counts all matches. */
  limit?: number;
  countOnly?: boolean;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** How many keys the range holds at `revision`, whatever the limit. */
  count: number;
  /** The store's current revision when the range was read (etcd's header revision). */
  revision: number;
}

export class MvccError extends Error {
  constructor(readonly code: 'compacted' | 'future-revision', message: string) {
    super(message);
  }
}

export const errCompacted = (): MvccError =>
  new MvccError('compacted', 'mvcc: required revision has been compacted');
export const errFutureRevision = (): MvccError =>
  new MvccError('future-revision', 'mvcc: required revision is a future revision');

export function assertRevision(rev: number): void {
  if (!Number.isSafeInteger(rev) || rev < 0) throw new Error(`invalid revision ${rev}`);
}

export function compareRevision(a: Revision, b: Revision): number {
  return a.main !== b.main ? a.main - b.main : a.sub - b.sub;
}
