import type { Client } from '../client';
import { LeaseNotFoundError, type EtcdError } from '../errors';
import type { LeaseKeepAlive } from '../lease';
import type { CallOptions } from '../pool';

// etcd's concurrency.Session: a lease kept alive for as long as the session lives. Locks
// and campaigns put their keys under this lease, so they vanish when the process dies
// (the lease expires after its TTL) or the session is closed (the lease is revoked).

/** etcd's defaultSessionTTL. */
export const DEFAULT_SESSION_TTL = 60;

export interface SessionOptions extends CallOptions {
  /** Lease TTL in seconds (default 60, as etcd's). */
  ttl?: number;
  /** Use this existing lease instead of granting one (etcd's WithLease). */
  lease?: bigint;
}

/** Why a session ended. */
export type SessionEnd =
  | { reason: 'closed' }
  | { reason: 'orphaned' }
  | { reason: 'lost'; error: EtcdError }
  /** Someone stopped the lease's keep-alive (e.g. client.lease.revoke of this lease on the same client, or client.close()). */
  | { reason: 'keepalive-stopped' };

/** How often a session checks that its keep-alive still runs. */
const KEEPER_CHECK_MS = 250;

export class Session {
  private ended: SessionEnd | null = null;
  private resolveDone!: (e: SessionEnd) => void;
  /**
   * Resolves when the session ends: its lease was lost (revoked, expired, or not renewed
   * within its TTL), or close() / orphan() was called. etcd's Session.Done().
   */
  readonly done: Promise<SessionEnd>;
  private readonly listeners: Array<(e: SessionEnd) => void> = [];

  private constructor(
    readonly client: Client,
    /** The session's lease ID. */
    readonly lease: bigint,
    /** The TTL asked for, in seconds. */
    readonly ttl: number,
    private readonly keeper: LeaseKeepAlive,
  ) {
    this.done = new Promise((r) => (this.resolveDone = r));
    keeper.onLost((error) => this.end({ reason: 'lost', error }));
    this.check = setInterval(() => {
      if (!this.keeper.active) this.end({ reason: 'keepalive-stopped' });
    }, KEEPER_CHECK_MS);
    this.check.unref();
  }
  private readonly check: NodeJS.Timeout;

  /** Grant a lease (or adopt opts.lease) and keep it alive. */
  static async create(client: Client, opts: SessionOptions = {}): Promise<Session> {
    const ttl = opts.ttl ?? DEFAULT_SESSION_TTL;
    if (!(ttl > 0)) throw new RangeError('concurrency: session TTL must be > 0');
    let id = opts.lease ?? 0n;
    if (id === 0n) id = (await client.lease.grant(ttl, { signal: opts.signal, timeoutMs: opts.timeoutMs })).id;
    const keeper = opts.lease !== undefined && opts.lease !== 0n ? client.lease.keepAlive(id) : client.lease.hub.keep(id, ttl);
    return new Session(client, id, ttl, keeper);
  }

  /** The lease ID as etcd formats it in lock / election keys (Go's %x: lowercase hex). */
  get leaseHex(): string {
    return this.lease.toString(16);
  }

  /** True once the session has ended (see done). */
  get isDone(): boolean {
    return this.ended !== null;
  }

  /** How the session ended, or null while it lives. */
  get endReason(): SessionEnd | null {
    return this.ended;
  }

  /** Called once when the session ends. */
  onDone(fn: (e: SessionEnd) => void): void {
    if (this.ended) fn(this.ended);
    else this.listeners.push(fn);
  }

  private end(e: SessionEnd): void {
    if (this.ended) return;
    clearInterval(this.check);
    this.ended = e;
    this.resolveDone(e);
    for (const fn of this.listeners.splice(0)) fn(e);
  }

  /** Stop keeping the lease alive without revoking it (it expires after its TTL); etcd's Orphan. */
  orphan(): void {
    this.keeper.stop();
    this.end({ reason: 'orphaned' });
  }

  /** Stop the keep-alive and revoke the lease: every key of the session (held locks, campaigns) is deleted. */
  async close(opts: CallOptions = {}): Promise<void> {
    this.keeper.stop();
    this.end({ reason: 'closed' });
    // As etcd: if revoking takes longer than the TTL, the lease has expired anyway.
    try {
      await this.client.lease.revoke(this.lease, { timeoutMs: opts.timeoutMs ?? this.ttl * 1000, signal: opts.signal });
    } catch (e) {
      if (!(e instanceof LeaseNotFoundError)) throw e; // already gone: nothing left to release
    }
  }
}

/** etcd's concurrency.NewSession. */
export function newSession(client: Client, opts?: SessionOptions): Promise<Session> {
  return Session.create(client, opts);
}
