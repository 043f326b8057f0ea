// Invariant assertions. A broken invariant means the log or the state machine could be
// corrupted if we carried on, so it throws rather than returning an error.

export class AssertionError extends Error {
  constructor(message: string) {
    super(`raft invariant violated: ${message}`);
    this.name = 'AssertionError';
  }
}

export function assert(condition: boolean, message: string | (() => string)): asserts condition {
  if (!condition) throw new AssertionError(typeof message === 'string' ? message : message());
}

/** Terms and indexes enter the core as JS numbers; they must be exact non-negative integers. */
export function assertIndex(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new AssertionError(`${what} is not a safe non-negative integer: ${n}`);
}
