import type * as grpc from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import { big, bufOf, header, num, toLong, type ResponseHeader } from './convert';
import { EtcdError, LeaseNotFoundError, etcdError, fromGrpc } from './errors';
import * as M from './methods';
import { sleep, type CallOptions, type Endpoint, type Pool } from './pool';

// Leases, and automatic keep-alive: one LeaseKeepAlive bidi stream per client carries
// the renewals of every kept lease, each sent at a third of its TTL. When the stream is
// lost it is reopened (on another member if needed) and every lease is renewed at once.
// A lease is lost when the server answers TTL <= 0 (revoked or expired) or when no
// renewal was acknowledged before its TTL ran out; the keeper then reports it and stops.

/** The lease could not be renewed before its TTL ran out (it has expired on the server, or may have). */
export class LeaseExpiredError extends EtcdError {}

const KEEPALIVE_TICK_MS = 100;
/** Renew no more often than this, whatever the TTL. */
const KEEPALIVE_MIN_INTERVAL_MS = 500;
const RECONNECT_BACKOFF_MIN_MS = 50;
const RECONNECT_BACKOFF_MAX_MS = 1_000;

export interface LeaseGrantOptions extends CallOptions {
  /** Ask for this lease ID (0 / absent: the server picks). */
  id?: bigint;
  /** Start keeping the lease alive. */
  keepAlive?: boolean;
}

export interface LeaseGrant {
  header: ResponseHeader;
  id: bigint;
  /** Granted TTL in seconds. */
  ttl: number;
}

export interface LeaseTimeToLive {
  header: ResponseHeader;
  id: bigint;
  /** Remaining TTL in seconds; -1 if the lease does not exist (expired or revoked). */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

/** The automatic keep-alive of one lease. */
export class LeaseKeepAlive {
  /** Last TTL the server granted, in seconds (0 until the first renewal when unknown). */
  ttl: number;
  /** @internal Date.now() after which the lease may have expired. */
  deadlineAtMs: number;
  /** @internal When to send the next renewal. */
  nextSendAtMs = 0;
  /** @internal Time of the first renewal sent since the last answer. */
  firstUnansweredAtMs: number | null = null;
  private stopped = false;
  private readonly lostListeners: Array<(err: EtcdError) => void> = [];
  private readonly renewListeners: Array<(ttl: number) => void> = [];
  /** Resolves with the reason when the lease is lost (never if it is stopped first). */
  readonly lost: Promise<EtcdError>;
  private resolveLost!: (e: EtcdError) => void;

  constructor(
    private readonly hub: KeepAliveHub,
    readonly id: bigint,
    ttl: number,
  ) {
    this.ttl = ttl;
    this.deadlineAtMs = ttl > 0 ? Date.now() + ttl * 1000 : Number.POSITIVE_INFINITY;
    this.lost = new Promise((r) => (this.resolveLost = r));
  }

  get active(): boolean {
    return !this.stopped;
  }

  /** Called with the reason when the lease is lost. */
  onLost(fn: (err: EtcdError) => void): void {
    this.lostListeners.push(fn);
  }

  /** Called with the new TTL after each renewal. */
  onRenewed(fn: (ttl: number) => void): void {
    this.renewListeners.push(fn);
  }

  /** Stop renewing (the lease then expires after its TTL unless revoked). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.hub.remove(this);
  }

  /** @internal */
  renewed(ttl: number, nowMs: number): void {
    this.ttl = ttl;
    this.deadlineAtMs = (this.firstUnansweredAtMs ?? nowMs) + ttl * 1000;
    this.firstUnansweredAtMs = null;
    this.nextSendAtMs = nowMs + Math.max(KEEPALIVE_MIN_INTERVAL_MS, (ttl * 1000) / 3);
    for (const fn of this.renewListeners) fn(ttl);
  }

  /** @internal */
  fail(err: EtcdError): void {
    if (this.stopped) return;
    this.stop();
    this.resolveLost(err);
    for (const fn of this.lostListeners) fn(err);
  }
}

/** @internal The keep-alive stream of one client. */
export class KeepAliveHub {
  private readonly keepers = new Map<bigint, LeaseKeepAlive>();
  private stream: grpc.ClientDuplexStream<M.LeaseKeepAliveRequest, M.LeaseKeepAliveResponse> | null = null;
  private endpoint: Endpoint | null = null;
  private generation = 0;
  private connecting = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly pool: Pool) {}

  keep(id: bigint, ttl: number): LeaseKeepAlive {
    if (this.closed || this.pool.isClosed) throw this.pool.closedError();
    const existing = this.keepers.get(id);
    if (existing) return existing;
    const k = new LeaseKeepAlive(this, id, ttl);
    this.keepers.set(id, k);
    if (this.timer === null) this.timer = setInterval(() => this.tick(), KEEPALIVE_TICK_MS);
    if (this.stream) this.send(k, Date.now());
    else void this.connect();
    return k;
  }

  remove(k: LeaseKeepAlive): void {
    if (this.keepers.get(k.id) === k) this.keepers.delete(k.id);
    if (this.keepers.size === 0) this.idle();
  }

  /** Stop the keeper of a lease (before it is revoked). */
  forget(id: bigint): void {
    this.keepers.get(id)?.stop();
  }

  private idle(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.dropStream();
  }

  private send(k: LeaseKeepAlive, nowMs: number): void {
    if (!this.stream) return;
    this.stream.write({ ID: toLong(k.id) });
    if (k.firstUnansweredAtMs === null) k.firstUnansweredAtMs = nowMs;
    // Until the answer comes, try again after the minimum interval.
    k.nextSendAtMs = nowMs + KEEPALIVE_MIN_INTERVAL_MS;
  }

  private tick(): void {
    const now = Date.now();
    for (const k of [...this.keepers.values()]) {
      if (now >= k.deadlineAtMs) {
        k.fail(new LeaseExpiredError(Status.DEADLINE_EXCEEDED, `cairn client: lease ${k.id} was not renewed within its TTL of ${k.ttl} s`));
      } else if (now >= k.nextSendAtMs) {
        this.send(k, now);
      }
    }
  }

  private async connect(): Promise<void> {
    if (this.connecting || this.stream) return;
    this.connecting = true;
    try {
      for (let attempt = 0; !this.closed && this.keepers.size > 0; attempt++) {
        try {
          const ep = await this.pool.pickReady(Date.now() + this.pool.dialTimeoutMs * (this.pool.endpoints.length + 1));
          this.open(ep);
          return;
        } catch {
          if (this.closed || this.pool.isClosed) return;
          await sleep(Math.min(RECONNECT_BACKOFF_MAX_MS, RECONNECT_BACKOFF_MIN_MS * 2 ** attempt));
        }
      }
    } finally {
      this.connecting = false;
    }
  }

  private open(ep: Endpoint): void {
    const gen = ++this.generation;
    const s = this.pool.bidi(ep, M.Lease.LeaseKeepAlive);
    this.stream = s;
    this.endpoint = ep;
    s.on('data', (r: M.LeaseKeepAliveResponse) => {
      if (gen === this.generation) this.onResponse(r);
    });
    s.on('error', (err: unknown) => {
      if (gen === this.generation) this.onLost(fromGrpc(err));
    });
    s.on('end', () => {
      if (gen === this.generation) this.onLost(null);
    });
    const now = Date.now();
    for (const k of this.keepers.values()) this.send(k, now);
  }

  private onResponse(r: M.LeaseKeepAliveResponse): void {
    const k = this.keepers.get(big(r.ID));
    if (k === undefined) return;
    const ttl = num(r.TTL);
    if (ttl <= 0) k.fail(new LeaseNotFoundError(Status.NOT_FOUND, 'etcdserver: requested lease not found'));
    else k.renewed(ttl, Date.now());
  }

  private onLost(err: EtcdError | null): void {
    const ep = this.endpoint;
    this.dropStream();
    if (this.closed || this.keepers.size === 0) return;
    if (ep !== null && (err === null || err.code === Status.UNAVAILABLE)) this.pool.markDown(ep);
    // Renewals sent on the lost stream may never be answered; their clock keeps running.
    void this.connect();
  }

  private dropStream(): void {
    const s = this.stream;
    this.generation++;
    this.stream = null;
    this.endpoint = null;
    if (s) {
      s.on('error', () => undefined);
      s.cancel();
    }
  }

  close(): void {
    this.closed = true;
    for (const k of [...this.keepers.values()]) k.stop();
    this.idle();
  }
}

/** `client.lease` */
export class LeaseClient {
  /** @internal */
  readonly hub: KeepAliveHub;

  constructor(private readonly pool: Pool) {
    this.hub = new KeepAliveHub(pool);
  }

  /** Grant a lease of `ttl` seconds; with `{ keepAlive: true }` it is kept alive until revoked, stopped or the client closes. */
  grant(ttl: number, opts: LeaseGrantOptions & { keepAlive: true }): Promise<LeaseGrant & { keepAlive: LeaseKeepAlive }>;
  grant(ttl: number, opts?: LeaseGrantOptions): Promise<LeaseGrant>;
  async grant(ttl: number, opts: LeaseGrantOptions = {}): Promise<LeaseGrant | (LeaseGrant & { keepAlive: LeaseKeepAlive })> {
    const r = await this.pool.unary(M.Lease.LeaseGrant, { TTL: toLong(ttl), ID: toLong(opts.id ?? 0n) }, opts);
    if (r.error !== undefined && r.error !== null && r.error.length > 0) throw etcdError(Status.UNKNOWN, r.error);
    const g: LeaseGrant = { header: header(r.header), id: big(r.ID), ttl: num(r.TTL) };
    if (opts.keepAlive === true) return { ...g, keepAlive: this.hub.keep(g.id, g.ttl) };
    return g;
  }

  /** Keep an existing lease alive. */
  keepAlive(id: bigint): LeaseKeepAlive {
    return this.hub.keep(id, 0);
  }

  /** Revoke a lease (its keys are deleted); its keep-alive stops. */
  async revoke(id: bigint, opts?: CallOptions): Promise<{ header: ResponseHeader }> {
    this.hub.forget(id);
    const r = await this.pool.unary(M.Lease.LeaseRevoke, { ID: toLong(id) }, opts);
    return { header: header(r.header) };
  }

  async timeToLive(id: bigint, opts: CallOptions & { keys?: boolean } = {}): Promise<LeaseTimeToLive> {
    const r = await this.pool.unary(M.Lease.LeaseTimeToLive, { ID: toLong(id), keys: opts.keys === true }, opts);
    return { header: header(r.header), id: big(r.ID), ttl: num(r.TTL), grantedTtl: num(r.grantedTTL), keys: (r.keys ?? []).map((k) => bufOf(k)) };
  }

  async leases(opts?: CallOptions): Promise<{ header: ResponseHeader; leases: bigint[] }> {
    const r = await this.pool.unary(M.Lease.LeaseLeases, {}, opts);
    return { header: header(r.header), leases: (r.leases ?? []).map((l) => big(l.ID)) };
  }
}
