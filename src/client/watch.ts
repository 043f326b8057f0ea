import type * as grpc from '@grpc/grpc-js';
import { etcdserverpb } from '../gen/proto';
import { KeyValue, header, num, toLong, type ResponseHeader } from './convert';
import { CompactedError, EtcdError, etcdError, fromGrpc } from './errors';
import { wireRange, type KeyRange } from './kv';
import * as M from './methods';
import { sleep, type Endpoint, type Pool } from './pool';
import { Metadata, status as Status } from '@grpc/grpc-js';

// Watch: every watcher of a client shares one bidi stream to the endpoint in use. Each
// watcher remembers the revision of the last event it delivered; when the stream is lost
// the hub opens a new one (failing over to another member if needed) and re-creates
// every watcher from that revision + 1, so the consumer sees no gap and no duplicate.
// Creates are sent one at a time: etcd answers them in order, and the `created`
// response carries the id of the watcher at the head of the queue.

export type WatchFilter = 'noput' | 'nodelete';

export interface WatchOptions extends KeyRange {
  /** First revision to deliver (default: the next revision after the watch is created). */
  startRevision?: number;
  /** Deliver the previous key-value pair with each event. */
  prevKv?: boolean;
  /** Event types the server should not send. */
  filters?: WatchFilter[];
  /** Ask the server for periodic progress notifications (delivered as batches without events). */
  progressNotify?: boolean;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

export interface WatchBatch {
  header: ResponseHeader;
  /** Empty for a progress notification. */
  events: WatchEvent[];
}

/** Batches queued for a consumer before the shared stream is paused (HTTP/2 flow control pushes back on the server). */
const WATCH_QUEUE_HIGH = 1_000;
const WATCH_QUEUE_LOW = 100;
const RECONNECT_BACKOFF_MIN_MS = 50;
const RECONNECT_BACKOFF_MAX_MS = 1_000;

type Waiter = { resolve: (r: IteratorResult<WatchBatch>) => void; reject: (e: unknown) => void };

/** One watch: an async iterable of event batches. */
export class Watcher implements AsyncIterable<WatchBatch> {
  /** @internal id on the current stream (null while not created). */
  wireId: string | null = null;
  /** @internal revision of the last event delivered (or known to be covered); null until known. */
  lastRevision: number | null;
  private readonly queue: WatchBatch[] = [];
  private readonly waiters: Waiter[] = [];
  private error: EtcdError | null = null;
  private done = false;
  private resolveReady!: () => void;
  private rejectReady!: (e: unknown) => void;
  /** Resolves once the server has created the watch (events after that are delivered). */
  readonly ready: Promise<void>;

  constructor(
    private readonly hub: WatchHub,
    readonly options: WatchOptions,
  ) {
    this.lastRevision = options.startRevision !== undefined && options.startRevision > 0 ? options.startRevision - 1 : null;
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    this.ready.catch(() => undefined);
  }

  get closed(): boolean {
    return this.done;
  }

  /** @internal */
  createRequest(): M.WatchRequest {
    const o = this.options;
    const c: etcdserverpb.WatchCreateRequest.$Properties = { ...wireRange(o) };
    if (this.lastRevision !== null) c.startRevision = toLong(this.lastRevision + 1);
    if (o.prevKv === true) c.prevKv = true;
    if (o.progressNotify === true) c.progressNotify = true;
    if (o.filters !== undefined) {
      c.filters = o.filters.map((f) => (f === 'noput' ? etcdserverpb.WatchCreateRequest.FilterType.NOPUT : etcdserverpb.WatchCreateRequest.FilterType.NODELETE));
    }
    return { createRequest: c };
  }

  /** @internal */
  created(revision: number): void {
    if (this.lastRevision === null) this.lastRevision = revision;
    this.resolveReady();
  }

  /** @internal Deliver the events newer than the last delivered revision. */
  deliver(resp: M.WatchResponse): void {
    if (this.done) return;
    const h = header(resp.header);
    const events: WatchEvent[] = [];
    for (const e of resp.events ?? []) {
      if (!e.kv) continue;
      const kv = KeyValue.fromWire(e.kv);
      if (this.lastRevision !== null && kv.modRevision <= this.lastRevision) continue;
      const ev: WatchEvent = { type: e.type === 1 ? 'delete' : 'put', kv };
      if (e.prevKv) ev.prevKv = KeyValue.fromWire(e.prevKv);
      events.push(ev);
    }
    if (events.length > 0) {
      this.lastRevision = events[events.length - 1].kv.modRevision;
    } else if ((resp.events ?? []).length === 0) {
      // Progress notification: the watcher has seen every event up to header.revision.
      if (this.lastRevision === null || h.revision > this.lastRevision) this.lastRevision = h.revision;
      if (this.options.progressNotify !== true) return;
    } else {
      return; // all duplicates
    }
    this.push({ header: h, events });
  }

  private push(b: WatchBatch): void {
    const w = this.waiters.shift();
    if (w) w.resolve({ value: b, done: false });
    else {
      this.queue.push(b);
      if (this.queue.length > WATCH_QUEUE_HIGH) this.hub.pause();
    }
  }

  /** @internal number of undelivered batches */
  get backlog(): number {
    return this.queue.length;
  }

  /** @internal End the iteration with an error (after the queued batches). */
  fail(err: EtcdError): void {
    if (this.done) return;
    this.error = err;
    this.finish();
    this.rejectReady(err);
  }

  /** @internal End the iteration normally (after the queued batches). */
  finish(): void {
    if (this.done) return;
    this.done = true;
    this.resolveReady();
    if (this.queue.length === 0) {
      for (const w of this.waiters.splice(0)) {
        if (this.error) w.reject(this.error);
        else w.resolve({ value: undefined, done: true });
      }
    }
  }

  /** Stop watching; the iteration ends. */
  async cancel(): Promise<void> {
    this.hub.cancel(this);
  }

  next(): Promise<IteratorResult<WatchBatch>> {
    const b = this.queue.shift();
    if (b !== undefined) {
      if (this.queue.length <= WATCH_QUEUE_LOW) this.hub.maybeResume();
      return Promise.resolve({ value: b, done: false });
    }
    if (this.error) return Promise.reject(this.error);
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchBatch> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.cancel();
        return { value: undefined, done: true };
      },
    };
  }
}

function cancelError(resp: M.WatchResponse): EtcdError {
  const compactRevision = num(resp.compactRevision);
  if (compactRevision > 0) {
    const e = new CompactedError(Status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted');
    e.compactRevision = compactRevision;
    return e;
  }
  const reason = resp.cancelReason ?? '';
  return etcdError(Status.UNKNOWN, reason.length > 0 ? reason : 'watch canceled by the server');
}

/** @internal All watchers of one client, multiplexed on one stream. */
export class WatchHub {
  private readonly watchers = new Set<Watcher>();
  private readonly byId = new Map<string, Watcher>();
  private pending: Watcher[] = [];
  private creating: Watcher | null = null;
  private stream: grpc.ClientDuplexStream<M.WatchRequest, M.WatchResponse> | null = null;
  private endpoint: Endpoint | null = null;
  private generation = 0;
  private connecting = false;
  private paused = false;
  private closed = false;

  constructor(private readonly pool: Pool) {}

  watch(opts: WatchOptions): Watcher {
    if (this.closed || this.pool.isClosed) throw this.pool.closedError();
    wireRange(opts); // validate now, not on the stream
    const w = new Watcher(this, opts);
    this.watchers.add(w);
    this.pending.push(w);
    if (this.stream) this.sendNextCreate();
    else void this.connect();
    return w;
  }

  cancel(w: Watcher): void {
    if (!this.watchers.delete(w)) return w.finish();
    this.pending = this.pending.filter((x) => x !== w);
    if (w.wireId !== null) {
      this.byId.delete(w.wireId);
      this.stream?.write({ cancelRequest: { watchId: toLong(BigInt(w.wireId)) } });
    }
    w.finish();
    if (this.watchers.size === 0) this.dropStream();
  }

  pause(): void {
    if (this.paused || !this.stream) return;
    this.paused = true;
    this.stream.pause();
  }

  maybeResume(): void {
    if (!this.paused) return;
    for (const w of this.watchers) if (w.backlog > WATCH_QUEUE_LOW) return;
    this.paused = false;
    this.stream?.resume();
  }

  private async connect(): Promise<void> {
    if (this.connecting || this.stream) return;
    this.connecting = true;
    try {
      for (let attempt = 0; !this.closed && this.watchers.size > 0; attempt++) {
        try {
          const ep = await this.pool.pickReady(Date.now() + this.pool.dialTimeoutMs * (this.pool.endpoints.length + 1));
          this.open(ep);
          return;
        } catch (e) {
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
    const md = new Metadata();
    // etcd's clientv3.WithRequireLeader: the server ends the stream when its member loses the leader.
    md.set('hasleader', 'true');
    const s = this.pool.bidi(ep, M.Watch.Watch, md);
    this.stream = s;
    this.endpoint = ep;
    this.paused = false;
    this.byId.clear();
    this.creating = null;
    // Every live watcher is (re)created from its last revision + 1.
    this.pending = [...this.watchers];
    s.on('data', (resp: M.WatchResponse) => {
      if (gen === this.generation) this.onResponse(resp);
    });
    s.on('error', (err: unknown) => {
      if (gen === this.generation) this.onLost(fromGrpc(err));
    });
    s.on('end', () => {
      if (gen === this.generation) this.onLost(null);
    });
    this.sendNextCreate();
  }

  private onLost(err: EtcdError | null): void {
    const ep = this.endpoint;
    this.dropStream();
    if (this.closed || this.watchers.size === 0) return;
    if (ep !== null && (err === null || err.code === Status.UNAVAILABLE)) this.pool.markDown(ep);
    for (const w of this.watchers) w.wireId = null;
    void this.connect();
  }

  private dropStream(): void {
    const s = this.stream;
    this.generation++;
    this.stream = null;
    this.endpoint = null;
    this.creating = null;
    this.byId.clear();
    if (s) {
      s.cancel();
      s.on('error', () => undefined);
    }
  }

  private sendNextCreate(): void {
    if (!this.stream || this.creating) return;
    const w = this.pending.shift();
    if (!w) return;
    this.creating = w;
    this.stream.write(w.createRequest());
  }

  private onResponse(resp: M.WatchResponse): void {
    const id = String(resp.watchId ?? 0);
    if (resp.created === true) {
      const w = this.creating;
      this.creating = null;
      if (w !== null) {
        if (resp.canceled === true) {
          this.watchers.delete(w);
          w.fail(cancelError(resp));
        } else if (!this.watchers.has(w)) {
          this.stream?.write({ cancelRequest: { watchId: toLong(BigInt(id)) } }); // canceled while being created
        } else {
          w.wireId = id;
          this.byId.set(id, w);
          w.created(header(resp.header).revision);
        }
      }
      this.sendNextCreate();
      return;
    }
    const w = this.byId.get(id);
    if (w === undefined) return;
    if (resp.canceled === true) {
      this.byId.delete(id);
      this.watchers.delete(w);
      w.fail(cancelError(resp));
      if (this.watchers.size === 0) this.dropStream();
      return;
    }
    w.deliver(resp);
  }

  close(): void {
    this.closed = true;
    this.dropStream();
    for (const w of this.watchers) w.finish();
    this.watchers.clear();
    this.pending = [];
  }
}
