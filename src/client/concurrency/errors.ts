// The errors of etcd's clientv3/concurrency package, with etcd's exact messages.

/** Base class of the concurrency recipes' errors. */
export class ConcurrencyError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Mutex.tryLock: the lock is held by another session (etcd's concurrency.ErrLocked). */
export class ErrLocked extends ConcurrencyError {
  constructor() {
    super('mutex: Locked by another session');
  }
}

/** The session's lease is gone, so its lock / campaign key is gone too (etcd's ErrSessionExpired). */
export class ErrSessionExpired extends ConcurrencyError {
  constructor(options?: { cause?: unknown }) {
    super('mutex: session is expired', options);
  }
}

/** Mutex.unlock without holding the lock (etcd's ErrLockReleased). */
export class ErrLockReleased extends ConcurrencyError {
  constructor() {
    super('mutex: lock has already been released');
  }
}

/** Election.proclaim when this election is not (or no longer) the leader (etcd's ErrElectionNotLeader). */
export class ErrElectionNotLeader extends ConcurrencyError {
  constructor() {
    super('election: not leader');
  }
}

/** Election.leader when nobody campaigns (etcd's ErrElectionNoLeader). */
export class ErrElectionNoLeader extends ConcurrencyError {
  constructor() {
    super('election: no leader');
  }
}

/** A watch used to wait for a key's deletion ended without the deletion (etcd: "lost watcher waiting for delete"). */
export class ErrLostWatcher extends ConcurrencyError {
  constructor(options?: { cause?: unknown }) {
    super('lost watcher waiting for delete', options);
  }
}

/** runSTM gave up: every attempt conflicted with a concurrent writer (etcd retries forever; cairn bounds it). */
export class ErrSTMConflict extends ConcurrencyError {
  constructor(readonly attempts: number) {
    super(`stm: transaction conflicted ${attempts} times; giving up`);
  }
}
