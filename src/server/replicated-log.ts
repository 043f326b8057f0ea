import { CommittedEntry } from './local-log';

// What the member needs from its log, whether it is a single member's local log or Raft.

export interface ReplicatedLog {
  /** The current term. */
  readonly term: number;
  /** The highest index known committed. */
  readonly commitIndex: number;
  /** The leader's member ID, 0n when there is none. */
  readonly leaderId: bigint;
  /** How many times the leader changed (etcd_server_leader_changes_seen_total). */
  readonly leaderChanges: number;
  /** Delivers committed entries in index order; a fatal error stops the member. */
  subscribe(onCommit: (entries: CommittedEntry[]) => void, onFatal: (err: Error) => void): void;
  /**
   * Proposes an entry; throws an EtcdError when it cannot be proposed now (no leader).
   * A log that steps proposals in later (batched) calls `onDropped` if they are refused then.
   */
  propose(data: Buffer, onDropped?: (err: Error) => void): void;
  /** Resolves with an index that, once applied, makes a read linearizable (ReadIndex). */
  readIndex(): Promise<number>;
  start(): void;
  stop(): Promise<void>;
}
