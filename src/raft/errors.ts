// Errors the core reports to its caller. Broken invariants are not among them: those
// throw AssertionError (see assert.ts) because continuing would risk corrupting data.

export class RaftError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RaftError';
  }
}

/** A proposal was not appended: no known leader, leader transfer in progress, uncommitted log too large, or this node was removed. */
export const ErrProposalDropped = new RaftError('ProposalDropped', 'raft proposal dropped');
/** A ReadIndex request was not queued (no known leader, or the pending queue is full). */
export const ErrReadIndexDropped = new RaftError('ReadIndexDropped', 'raft read index request dropped');
/** The requested index is below the first index of the log (it was compacted). */
export const ErrCompacted = new RaftError('Compacted', 'requested index is unavailable due to compaction');
/** The requested index is above the last index of the storage. */
export const ErrUnavailable = new RaftError('Unavailable', 'requested entry at index is unavailable');
/** The snapshot given is older than the storage's current one. */
export const ErrSnapOutOfDate = new RaftError('SnapOutOfDate', 'requested index is older than the existing snapshot');
/** The application is still producing a snapshot; raft retries later. */
export const ErrSnapshotTemporarilyUnavailable = new RaftError(
  'SnapshotTemporarilyUnavailable',
  'snapshot is temporarily unavailable',
);
/** A local-only message type (Hup, Beat, ...) arrived through step(). */
export const ErrStepLocalMsg = new RaftError('StepLocalMsg', 'raft: cannot step raft local message');
