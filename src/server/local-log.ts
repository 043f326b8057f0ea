import { Wal, WalEntry } from '../wal/wal';
import type { ReplicatedLog } from './replicated-log';

// The log of a single-member cluster: an entry is committed once it is durable on this one
// member (a quorum of one). Proposals made in the same turn of the event loop share one WAL
// write and fdatasync; the WAL's own loop gathers everything proposed while a sync runs.
// Raft replaces this class when a member has peers; the server sees the same interface.

export interface CommittedEntry {
  index: number;
  term: number;
  data: Buffer;
  /** A membership change (Raft applied it already); its context says what the server records. */
  confChange?: { type: number; nodeId: bigint; context: Uint8Array };
}

export const ENTRY_NORMAL = 0;

export class LocalLog implements ReplicatedLog {
  readonly leaderChanges = 1;
  private lastIndex: number;
  private committedIndex: number;
  private uncommitted: CommittedEntry[] = [];
  private syncScheduled = false;
  private onCommit: (entries: CommittedEntry[]) => void = () => undefined;
  private onFatal: (err: Error) => void = () => undefined;

  constructor(private readonly wal: Wal, lastIndex: number, readonly term: number, readonly leaderId: bigint) {
    this.lastIndex = lastIndex;
    this.committedIndex = lastIndex;
  }

  get commitIndex(): number {
    return this.committedIndex;
  }

  subscribe(onCommit: (entries: CommittedEntry[]) => void, onFatal: (err: Error) => void): void {
    this.onCommit = onCommit;
    this.onFatal = onFatal;
  }

  /** A single member's committed entries are all durable ones: nothing to confirm. */
  readIndex(): Promise<number> {
    return Promise.resolve(this.committedIndex);
  }

  start(): void {}

  async stop(): Promise<void> {}

  /** Appends `data` as the next entry; it is delivered to the subscriber once durable. */
  propose(data: Buffer): number {
    const entry: CommittedEntry = { index: ++this.lastIndex, term: this.term, data };
    const walEntry: WalEntry = { index: entry.index, term: entry.term, type: ENTRY_NORMAL, data };
    this.wal.appendEntries([walEntry]);
    this.uncommitted.push(entry);
    if (!this.syncScheduled) {
      this.syncScheduled = true;
      setImmediate(() => this.sync());
    }
    return entry.index;
  }

  private sync(): void {
    this.syncScheduled = false;
    const upTo = this.lastIndex;
    this.wal.sync().then(
      () => this.commitTo(upTo),
      (err: Error) => this.onFatal(err),
    );
  }

  private commitTo(index: number): void {
    if (index <= this.committedIndex) return;
    let n = 0;
    while (n < this.uncommitted.length && this.uncommitted[n].index <= index) n++;
    const entries = this.uncommitted.splice(0, n);
    this.committedIndex = index;
    this.onCommit(entries);
  }
}
