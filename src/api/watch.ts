import { Metadata, status as Status, type ServerDuplexStream, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { etcdserverpb, mvccpb } from '../gen/proto';
import { EventType, WatchEvent } from '../mvcc/types';
import { WatchFilter, WatchSink, Watcher } from '../mvcc/watch-hub';
import { asBuffer, kvToWire, toNumber } from '../server/convert';
import type { AuthInfo } from '../auth/store';
import { callerOf } from './caller';
import { CairnServer } from '../server/server';
import { method } from './codec';

// etcd's Watch service: one bidirectional stream carries many watchers. Create, cancel and
// progress requests come in; created/canceled notices and event batches go out, in the
// order etcd sends them. When the gRPC stream's buffer fills, the stream stops taking
// deliveries and its watchers fall back to catching up from storage once it drains.

const pb = etcdserverpb;

export const watchService: ServiceDefinition = {
  Watch: method('/etcdserverpb.Watch/Watch', pb.WatchRequest, pb.WatchResponse, { request: true, response: true }),
};

/** How often a waiting progress request looks again at its stream's watchers. */
const PROGRESS_POLL_MS = 20;

/** etcd puts the whole gRPC error text of ErrGRPCPermissionDenied in the cancel reason. */
const PERMISSION_DENIED_REASON = 'rpc error: code = PermissionDenied desc = etcdserver: permission denied';

/** A call on the direct path (direct.ts) also takes a response already encoded. */
type Call = ServerDuplexStream<etcdserverpb.WatchRequest, etcdserverpb.IWatchResponse> & { acceptsEncoded?: boolean };

export function watchImplementation(member: CairnServer, log: Logger): UntypedServiceImplementation {
  return {
    Watch: (call: Call) => {
      // Who asks is looked up at each create (as etcd does), so an auth change or a renewed
      // token is seen by a long-lived stream; an invalid token ends the stream at once.
      const caller = (): AuthInfo => callerOf(member, call);
      try {
        caller();
      } catch (e) {
        const err = e as { code?: number; message?: string };
        call.emit('error', { code: err.code ?? Status.UNKNOWN, details: err.message ?? String(e), metadata: new Metadata() });
        return;
      }
      const stream = new WatchStream(member, call, log, caller);
      call.on('data', (req: etcdserverpb.WatchRequest) => stream.onRequest(req));
      call.on('drain', () => stream.onDrain());
      call.on('end', () => {
        stream.close();
        call.end();
      });
      call.on('error', () => stream.close());
      call.on('cancelled', () => stream.close());
      call.on('close', () => stream.close());
      // clientv3's WithRequireLeader: a stream that asked for a leader is ended once the
      // member has had none for three election timeouts, so the client moves elsewhere.
      // (The JSON gateway drives this handler with a call that has no gRPC metadata.)
      if ((call.metadata?.get('hasleader') ?? []).some((v) => String(v) === 'true')) {
        let missed = 0;
        const timer = setInterval(() => {
          missed = member.leaderId === 0n ? missed + 1 : 0;
          if (missed < 3) return;
          clearInterval(timer);
          stream.close();
          call.emit('error', { code: Status.UNAVAILABLE, details: 'etcdserver: no leader', metadata: new Metadata() });
        }, member.config.electionTimeoutMs);
        timer.unref();
        call.on('close', () => clearInterval(timer));
        call.on('cancelled', () => clearInterval(timer));
      }
    },
  };
}

interface StreamWatcher {
  watcher: Watcher;
  progressNotify: boolean;
  fragment: boolean;
  /** Nothing was sent to it since the last progress tick. */
  idle: boolean;
}

class WatchStream implements WatchSink {
  private readonly watchers = new Map<number, StreamWatcher>();
  private nextId = 0;
  private blocked = false;
  private closed = false;
  private progressTimer: NodeJS.Timeout | undefined;
  /** A progress request waits for this stream's watchers to catch up (see answerProgress). */
  private progressWanted = false;
  private progressPoll: NodeJS.Timeout | undefined;

  constructor(
    private readonly member: CairnServer,
    private readonly call: Call,
    private readonly log: Logger,
    private readonly caller: () => AuthInfo,
  ) {}

  onRequest(req: etcdserverpb.WatchRequest): void {
    if (this.closed) return;
    try {
      if (req.createRequest) this.create(req.createRequest);
      else if (req.cancelRequest) this.cancel(toNumber(req.cancelRequest.watchId));
      else if (req.progressRequest) this.requestProgress();
    } catch (e) {
      this.log.error({ err: e }, 'watch request failed');
    }
  }

  private create(c: etcdserverpb.IWatchCreateRequest): void {
    const key = c.key && c.key.length > 0 ? asBuffer(c.key) : Buffer.of(0);
    const rawEnd = c.rangeEnd && c.rangeEnd.length > 0 ? asBuffer(c.rangeEnd) : undefined;
    const end = rawEnd && rawEnd.length === 1 && rawEnd[0] === 0 ? Buffer.alloc(0) : rawEnd;
    const header = this.member.header();
    try {
      this.member.auth.checkRange(this.caller(), key, rawEnd);
    } catch {
      // etcd answers a watch it does not permit with a created-and-canceled notice.
      this.write({ header, watchId: c.watchId ?? 0, created: true, canceled: true, cancelReason: PERMISSION_DENIED_REASON });
      return;
    }
    if (end !== undefined && end.length > 0 && Buffer.compare(key, end) >= 0) {
      this.write({ header, watchId: -1, created: true, canceled: true, cancelReason: 'mvcc: watcher range is empty' });
      return;
    }
    let id = toNumber(c.watchId);
    if (id !== 0) {
      if (this.watchers.has(id)) {
        this.write({ header, watchId: -1, created: true, canceled: true, cancelReason: 'mvcc: duplicate watch ID provided on the WatchStream' });
        return;
      }
    } else {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    }
    const filters: WatchFilter[] = [];
    for (const f of c.filters ?? []) {
      if ((f as number) === WatchFilter.NoPut) filters.push(WatchFilter.NoPut);
      else if ((f as number) === WatchFilter.NoDelete) filters.push(WatchFilter.NoDelete);
    }
    const watcher = new Watcher(
      { key, end, startRevision: toNumber(c.startRevision), filters, prevKv: c.prevKv === true },
      this,
      id,
    );
    const sw: StreamWatcher = { watcher, progressNotify: c.progressNotify === true, fragment: c.fragment === true, idle: true };
    this.watchers.set(id, sw);
    this.write({ header, watchId: id, created: true });
    this.member.watchHub.add(watcher);
    if (sw.progressNotify) this.startProgressTimer();
  }

  private cancel(id: number): void {
    const sw = this.watchers.get(id);
    if (sw === undefined) return;
    this.watchers.delete(id);
    this.member.watchHub.remove(sw.watcher);
    this.write({ header: this.member.header(), watchId: id, canceled: true });
  }

  ready(): boolean {
    return !this.blocked && !this.closed;
  }

  send(w: Watcher, events: WatchEvent[], revision: number): void {
    const sw = this.watchers.get(w.id);
    if (sw === undefined || sw.watcher !== w) return;
    sw.idle = false;
    if (this.call.acceptsEncoded === true && !sw.fragment) {
      // The same events go to many watchers: each is encoded once (see encodedResponse).
      this.write(encodedResponse(this.member, revision, w.id, events));
      return;
    }
    const resp: etcdserverpb.IWatchResponse = { header: this.member.header(revision), watchId: w.id, events: events.map(eventToWire) };
    if (sw.fragment && events.length > 1) this.writeFragments(resp);
    else this.write(resp);
  }

  compacted(w: Watcher, compactRevision: number): void {
    if (this.watchers.get(w.id)?.watcher !== w) return;
    this.watchers.delete(w.id);
    // etcd's compacted notice carries no revision in its header.
    this.write({ header: this.member.header(0, true), watchId: w.id, compactRevision, canceled: true });
  }

  onDrain(): void {
    if (!this.blocked) return;
    this.blocked = false;
    this.member.watchHub.wake();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.progressTimer) clearInterval(this.progressTimer);
    if (this.progressPoll) clearTimeout(this.progressPoll);
    for (const sw of this.watchers.values()) this.member.watchHub.remove(sw.watcher);
    this.watchers.clear();
  }

  private requestProgress(): void {
    this.progressWanted = true;
    this.answerProgress();
  }

  /**
   * A progress notification tells the client it has every event up to the header's
   * revision, so it goes out only once all of this stream's watchers are synced (etcd 3.5's
   * rule; 3.4 answered at once, which could vouch for events still being caught up from
   * storage, and a client resuming from that revision would skip them).
   */
  private answerProgress(): void {
    if (!this.progressWanted || this.closed) return;
    let synced = !this.blocked;
    for (const sw of this.watchers.values()) if (!sw.watcher.synced) synced = false;
    if (synced) {
      this.progressWanted = false;
      this.write({ header: this.member.header(), watchId: -1 });
      return;
    }
    if (this.progressPoll === undefined) {
      this.progressPoll = setTimeout(() => {
        this.progressPoll = undefined;
        this.answerProgress();
      }, PROGRESS_POLL_MS);
    }
  }

  private startProgressTimer(): void {
    if (this.progressTimer) return;
    this.progressTimer = setInterval(() => {
      for (const sw of this.watchers.values()) {
        if (sw.progressNotify && sw.idle && sw.watcher.synced && this.ready()) {
          this.write({ header: this.member.header(), watchId: sw.watcher.id });
        }
        sw.idle = true;
      }
    }, this.member.config.watchProgressNotifyIntervalMs);
    this.progressTimer.unref();
  }

  /** etcd's sendFragments: split one revision's events over responses no larger than the request limit. */
  private writeFragments(resp: etcdserverpb.IWatchResponse): void {
    const limit = this.member.config.maxRequestBytes;
    const events = resp.events ?? [];
    if (pb.WatchResponse.encode(resp).len < limit) {
      this.write(resp);
      return;
    }
    let i = 0;
    while (i < events.length) {
      const part: etcdserverpb.IWatchResponse = { ...resp, events: [], fragment: true };
      let size = pb.WatchResponse.encode(part).len;
      while (i < events.length) {
        const evSize = mvccpb.Event.encode(events[i]).len + 4;
        if (part.events!.length > 0 && size + evSize >= limit) break;
        part.events!.push(events[i++]);
        size += evSize;
      }
      if (i === events.length) part.fragment = false;
      this.write(part);
    }
  }

  /** An encoded response only when the call acceptsEncoded. */
  private write(resp: etcdserverpb.IWatchResponse | Buffer): void {
    if (this.closed) return;
    if (!this.call.write(resp as etcdserverpb.IWatchResponse)) this.blocked = true;
  }
}

export function eventToWire(e: WatchEvent): mvccpb.IEvent {
  return {
    type: e.type === EventType.Put ? mvccpb.Event.EventType.PUT : mvccpb.Event.EventType.DELETE,
    kv: kvToWire(e.kv),
    prevKv: e.prevKv ? kvToWire(e.prevKv) : undefined,
  };
}

// A put seen by a thousand watchers is sent a thousand times, and each WatchResponse differs
// from the others only in its watch_id. So the header and each event are encoded once and
// every response is put together from those bytes: encoded protobuf messages concatenate
// into the message with all their fields (header, watch_id, events, in WatchResponse.encode's
// order). An event's bytes are kept with its key-value
// object (one object per write, shared by every watcher that sees it; a watcher without
// prev_kv gets a copy of the event without it, but the same kv).

interface EncodedEvent {
  withPrev?: Uint8Array;
  bare?: Uint8Array;
}

const encodedEvents = new WeakMap<object, EncodedEvent>();
let headerCache: { revision: number; term: number; bytes: Uint8Array } | undefined;

/** Some fields of a WatchResponse, encoded as WatchResponse.encode writes them (a zero watch_id: nothing). */
function fields(r: etcdserverpb.IWatchResponse): Uint8Array {
  return etcdserverpb.WatchResponse.encode(r).finish();
}

function encodedEvent(e: WatchEvent): Uint8Array {
  let cached = encodedEvents.get(e.kv);
  if (cached === undefined) {
    cached = {};
    encodedEvents.set(e.kv, cached);
  }
  const withPrev = e.prevKv !== undefined;
  let bytes = withPrev ? cached.withPrev : cached.bare;
  if (bytes === undefined) {
    bytes = fields({ events: [eventToWire(e)] });
    if (withPrev) cached.withPrev = bytes;
    else cached.bare = bytes;
  }
  return bytes;
}

export function encodedResponse(member: Pick<CairnServer, 'header'>, revision: number, watchId: number, events: WatchEvent[]): Buffer {
  const header = member.header(revision);
  const term = Number(header.raftTerm);
  if (headerCache === undefined || headerCache.revision !== revision || headerCache.term !== term) {
    headerCache = { revision, term, bytes: fields({ header }) };
  }
  const parts: Uint8Array[] = [headerCache.bytes, fields({ watchId })];
  for (const e of events) parts.push(encodedEvent(e));
  return Buffer.concat(parts);
}
