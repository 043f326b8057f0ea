import { Lessor } from '../lease/lessor';

// When leases expire: the leader's own bookkeeping, kept out of the replicated state (apply
// reads no clock). Each lease has a deadline on this member's monotonic clock; keep-alives
// push it out; a periodic check proposes a revoke for every lease past its deadline, and the
// revoke, applied through the log, is what deletes the keys.
//
// After a restart (or, with peers, on becoming leader) every lease gets a fresh deadline of
// its full granted TTL from that moment: etcd's rule without lease checkpoints. A lease can
// therefore outlive its TTL across a restart, never expire early.

/** How often deadlines are checked (etcd checks every 500 ms). */
export const EXPIRY_CHECK_INTERVAL_MS = 500;
/** At most this many revokes are proposed per check (etcd: 1000 per second). */
export const REVOKES_PER_CHECK_MAX = 500;

export class LeaseExpiry {
  private readonly deadlines = new Map<bigint, number>();
  private readonly revoking = new Set<bigint>();
  private timer: NodeJS.Timeout | undefined;

  private wasLeader = false;

  constructor(
    private readonly lessor: Lessor,
    private readonly proposeRevoke: (id: bigint) => Promise<unknown>,
    private readonly isLeader: () => boolean,
    private readonly now: () => number = () => performance.now(),
  ) {
    lessor.onGranted((l) => this.deadlines.set(l.id, this.now() + l.ttlSeconds * 1000));
    lessor.onRevoked((id) => {
      this.deadlines.delete(id);
      this.revoking.delete(id);
    });
    for (const l of lessor.all()) this.deadlines.set(l.id, this.now() + l.ttlSeconds * 1000);
  }

  /** Every lease gets its full TTL from now; deadlines of leases that are gone are dropped. */
  resetAll(): void {
    this.deadlines.clear();
    this.revoking.clear();
    const now = this.now();
    for (const l of this.lessor.all()) this.deadlines.set(l.id, now + l.ttlSeconds * 1000);
  }

  start(): void {
    this.timer = setInterval(() => this.check(), EXPIRY_CHECK_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Renews a lease; returns its TTL in seconds, or undefined when it does not exist or has expired. */
  keepAlive(id: bigint): number | undefined {
    const lease = this.lessor.get(id);
    const deadline = this.deadlines.get(id);
    if (lease === undefined || deadline === undefined || deadline <= this.now()) return undefined;
    this.deadlines.set(id, this.now() + lease.ttlSeconds * 1000);
    return lease.ttlSeconds;
  }

  /** Seconds left before the lease expires (truncated, as etcd reports it); -1 when past it. */
  remainingSeconds(id: bigint): number {
    const deadline = this.deadlines.get(id);
    if (deadline === undefined) return -1;
    const left = deadline - this.now();
    return left <= 0 ? -1 : Math.trunc(left / 1000);
  }

  private check(): void {
    const now = this.now();
    if (!this.isLeader()) {
      this.wasLeader = false;
      return;
    }
    if (!this.wasLeader) {
      // Newly leader: every lease gets its full TTL from now (etcd's Promote), so none
      // expires early because the previous leader's renewals were not seen here.
      this.wasLeader = true;
      for (const l of this.lessor.all()) this.deadlines.set(l.id, now + l.ttlSeconds * 1000);
      return;
    }
    let proposed = 0;
    for (const [id, deadline] of this.deadlines) {
      if (proposed >= REVOKES_PER_CHECK_MAX) break;
      if (deadline > now || this.revoking.has(id)) continue;
      this.revoking.add(id);
      proposed++;
      // A failed revoke (the member stopping, a full queue) is retried at a later check.
      this.proposeRevoke(id).catch(() => this.revoking.delete(id));
    }
  }
}
