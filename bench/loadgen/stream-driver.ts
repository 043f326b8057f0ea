/**
 * Drivers for the streaming workloads, run in one load-generator thread (the same
 * worker/Driver protocol as the unary driver in driver.ts, so the runner's CPU
 * accounting, rounds and table apply unchanged):
 *
 * - watch-fanout: `watchers` watch streams, one watcher each on the same prefix, spread
 *   over `conns` HTTP/2 connections (all `created` responses awaited before the run);
 *   then one writer, on its own connection, puts keys under the prefix: open loop at
 *   `watchRate` puts/s (a put is sent when due, whether or not earlier ones have been
 *   answered, up to WRITER_MAX_IN_FLIGHT), or with `watchRate` 0 back-to-back with one
 *   put in flight. Each value carries the put's send time (process.hrtime, same thread),
 *   so every watcher measures the delivery latency of every event (receive time - send
 *   time). Order and completeness: every watcher checks that mod_revisions strictly
 *   increase and, at the end, that it got exactly as many events as puts were
 *   acknowledged, with the same sum of revisions as the put responses. ops = events
 *   received by all watchers inside the measured window; latency = every event whose
 *   put was sent inside the window (also those delivered after it, during the drain).
 *   After the window the writer stops and the driver waits (up to drainTimeoutMs) until
 *   every watcher has every event; a watcher that misses any counts as errors.
 * - lease-keepalive: `clients` leases (LeaseGrant, TTL 600 s), one per client; each
 *   client owns one LeaseKeepAlive bidi stream (over `conns` connections) and sends the
 *   next request as soon as the previous response arrives. ops = keep-alive responses in
 *   the window; latency = request-to-response round trip.
 */
import { etcdserverpb } from '../../src/gen/proto';
import type { Driver, DriverConfig, DriverResult } from './driver';
import { Histogram } from './histogram';
import { scanField } from './proto-scan';
import { BidiCall, frame, H2Session, type StreamSink } from './stream';
import { connect, type CallSink, type Connection } from './transports';

export interface StreamOptions {
  /** watch-fanout: watch streams (one watcher each). */
  watchers: number;
  /** watch-fanout: writer puts per second; 0 = back-to-back (one put in flight). */
  watchRate: number;
}

export const STREAM_DEFAULTS: StreamOptions = { watchers: 1000, watchRate: 200 };

const ERROR_SAMPLES_MAX = 5;
const LEASE_TTL_S = 600;
const VALUE_BYTES = 16; // float64 LE sequence number, float64 LE send time (µs, hrtime)
/** Open-loop writer: most puts outstanding at once (beyond that it falls behind its rate, visibly). */
const WRITER_MAX_IN_FLIGHT = 64;
type Phase = 'idle' | 'warmup' | 'measure' | 'drain' | 'closed';

function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/** Counters shared by both streaming drivers; becomes the DriverResult. */
class Tally {
  readonly hist = new Histogram();
  phase: Phase = 'idle';
  ops = 0;
  errors = 0;
  errorsTotal = 0;
  badResponses = 0;
  readonly errorsByCode: Record<string, number> = {};
  readonly errorSamples: string[] = [];
  callsStarted = 0;
  unfinished = 0;
  verified = 0;
  measureStart = 0n;
  measureEnd = 0n;
  readonly extra: Record<string, number> = {};

  noteError(code: string, message: string, n = 1): void {
    this.errorsTotal += n;
    if (this.phase === 'measure') this.errors += n;
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + n;
    if (this.errorSamples.length < ERROR_SAMPLES_MAX) this.errorSamples.push(`${code}: ${message}`);
  }

  result(): DriverResult {
    return {
      hist: this.hist.data(),
      ops: this.ops,
      windowMs: Number(this.measureEnd - this.measureStart) / 1e6,
      errors: this.errors,
      errorsTotal: this.errorsTotal,
      badResponses: this.badResponses,
      errorsByCode: this.errorsByCode,
      errorSamples: this.errorSamples,
      callsStarted: this.callsStarted,
      unfinished: this.unfinished,
      verified: this.verified,
      extra: this.extra,
    };
  }
}

/** warm-up, window and end-of-window callbacks for a duration run. */
function schedule(cfg: DriverConfig, t: Tally, onMeasure: (edge: 'start' | 'end') => void, onWindowEnd: () => void): void {
  const start = (): void => {
    t.phase = 'measure';
    t.measureStart = process.hrtime.bigint();
    onMeasure('start');
  };
  t.phase = 'warmup';
  if (cfg.warmupMs <= 0) start();
  else setTimeout(start, cfg.warmupMs);
  setTimeout(() => {
    t.measureEnd = process.hrtime.bigint();
    t.phase = 'drain';
    onMeasure('end');
    onWindowEnd();
  }, Math.max(cfg.warmupMs, 0) + cfg.durationMs);
}

async function openSessions(cfg: DriverConfig): Promise<H2Session[]> {
  const sessions: H2Session[] = [];
  for (let i = 0; i < cfg.conns; i++) sessions.push(new H2Session(cfg.target));
  try {
    await Promise.all(sessions.map((s) => s.ready(cfg.connectTimeoutMs)));
  } catch (e) {
    for (const s of sessions) s.close();
    throw new Error(`loadgen: cannot connect to ${cfg.target}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return sessions;
}

/** One unary call through the h2 transport, as a promise (setup only, not timed). */
function unary(conn: Connection, method: string, request: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sink: CallSink = {
      callComplete(errCode, detail, resp) {
        if (errCode !== null || resp === null) reject(new Error(`${method}: ${errCode ?? 'NO_RESPONSE'} ${detail}`));
        else resolve(resp);
      },
    };
    conn.caller(method, sink).send(conn.prepare([Buffer.from(request.buffer, request.byteOffset, request.byteLength)])[0]);
  });
}

function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const tick = (): void => {
      if (cond()) resolve(true);
      else if (Date.now() >= deadline) resolve(false);
      else setTimeout(tick, 20);
    };
    tick();
  });
}

export async function prepareStreamDriver(cfg: DriverConfig): Promise<Driver> {
  const so = cfg.stream ?? STREAM_DEFAULTS;
  if (cfg.count > 0) throw new Error(`loadgen: ${cfg.workload} runs for a duration, not a count`);
  if (cfg.workload === 'watch-fanout') return prepareWatchFanout(cfg, so);
  if (cfg.workload === 'lease-keepalive') return prepareLeaseKeepAlive(cfg);
  throw new Error(`loadgen: unknown streaming workload ${cfg.workload}`);
}

// ---------------------------------------------------------------------------------
// Allocation-free protobuf reading for WatchResponse -> Event -> KeyValue.

const cur = new Int32Array(1);

function varint(buf: Uint8Array, pos: number): number {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10 && pos < buf.length; i++) {
    const b = buf[pos++];
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      cur[0] = pos;
      return value;
    }
    mul *= 128;
  }
  cur[0] = -1;
  return -1;
}

/** Skip a field of wire type `wire` at `pos`; returns the next offset or -1. */
function skip(buf: Uint8Array, pos: number, wire: number): number {
  switch (wire) {
    case 0:
      varint(buf, pos);
      return cur[0];
    case 1:
      return pos + 8;
    case 2: {
      const len = varint(buf, pos);
      return len < 0 ? -1 : cur[0] + len;
    }
    case 5:
      return pos + 4;
    default:
      return -1;
  }
}

// WatchResponse fields
const WR_CREATED = 3;
const WR_CANCELED = 4;
const WR_COMPACT_REVISION = 5;
const WR_EVENTS = 11;
// Event / KeyValue fields
const EV_KV = 2;
const KV_MOD_REVISION = 3;
const KV_VALUE = 5;
// PutResponse.header.revision
const RESP_HEADER = 1;
const HEADER_REVISION = 3;

/** header.revision of a KV response, or -1. */
function headerRevision(msg: Buffer): number {
  let pos = 0;
  while (pos < msg.length) {
    const tag = varint(msg, pos);
    if (tag < 0) return -1;
    pos = cur[0];
    if ((tag & 7) === 2 && Math.floor(tag / 8) === RESP_HEADER) {
      const len = varint(msg, pos);
      let p = cur[0];
      const end = p + len;
      while (p < end) {
        const t = varint(msg, p);
        if (t < 0) return -1;
        p = cur[0];
        if ((t & 7) === 0 && Math.floor(t / 8) === HEADER_REVISION) return varint(msg, p);
        p = skip(msg, p, t & 7);
        if (p < 0) return -1;
      }
      return -1;
    }
    pos = skip(msg, pos, tag & 7);
    if (pos < 0) return -1;
  }
  return -1;
}

// ---------------------------------------------------------------------------------
// watch-fanout

interface WatchState {
  t: Tally;
  /** First and one-past-last sequence numbers sent inside the window (-1: not yet). */
  firstMeasuredSeq: number;
  endMeasuredSeq: number;
  prefix: Buffer;
}

class Watcher implements StreamSink {
  call: BidiCall | null = null;
  created = false;
  lastRev = 0;
  revSum = 0;
  received = 0;
  outOfOrder = 0;
  private verifyNext = true;

  constructor(
    private readonly s: WatchState,
    private readonly onCreated: () => void,
  ) {}

  onMessage(msg: Buffer): void {
    const s = this.s;
    const t = s.t;
    if (t.phase === 'closed') return;
    const now = nowUs();
    let pos = 0;
    const n = msg.length;
    while (pos < n) {
      const tag = varint(msg, pos);
      if (tag < 0) return this.bad(`malformed WatchResponse (${n} bytes)`);
      pos = cur[0];
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      if (wire === 0 && (field === WR_CREATED || field === WR_CANCELED || field === WR_COMPACT_REVISION)) {
        const v = varint(msg, pos);
        pos = cur[0];
        if (v > 0 && field === WR_CREATED) {
          if (!this.created) {
            this.created = true;
            this.onCreated();
          }
        } else if (v > 0) {
          t.noteError(field === WR_CANCELED ? 'WATCH_CANCELED' : 'WATCH_COMPACTED', `watcher canceled by the server (field ${field} = ${v})`);
        }
        continue;
      }
      if (wire === 2 && field === WR_EVENTS) {
        const len = varint(msg, pos);
        const start = cur[0];
        if (len < 0 || start + len > n) return this.bad('malformed event');
        this.event(msg, start, start + len, now);
        pos = start + len;
        continue;
      }
      pos = skip(msg, pos, wire);
      if (pos < 0) return this.bad(`malformed WatchResponse (${n} bytes)`);
    }
    if (this.verifyNext && this.received > 0) this.verifyFull(msg);
  }

  /** One Event at msg[from, to): find kv.value, read sequence number and send time. */
  private event(msg: Buffer, from: number, to: number, now: number): void {
    let pos = from;
    let valueAt = -1;
    let valueLen = -1;
    let rev = -1;
    while (pos < to) {
      const tag = varint(msg, pos);
      if (tag < 0) return this.bad('malformed event');
      pos = cur[0];
      const wire = tag & 7;
      if (wire === 2 && Math.floor(tag / 8) === EV_KV) {
        const len = varint(msg, pos);
        let p = cur[0];
        const kvEnd = p + len;
        while (p < kvEnd) {
          const kt = varint(msg, p);
          if (kt < 0) return this.bad('malformed kv');
          p = cur[0];
          if ((kt & 7) === 2 && Math.floor(kt / 8) === KV_VALUE) {
            valueLen = varint(msg, p);
            valueAt = cur[0];
          } else if ((kt & 7) === 0 && Math.floor(kt / 8) === KV_MOD_REVISION) {
            rev = varint(msg, p);
          }
          p = skip(msg, p, kt & 7);
          if (p < 0) return this.bad('malformed kv');
        }
        pos = kvEnd;
        continue;
      }
      pos = skip(msg, pos, wire);
      if (pos < 0) return this.bad('malformed event');
    }
    const t = this.s.t;
    if (valueLen !== VALUE_BYTES) {
      t.badResponses++;
      t.noteError('BAD_EVENT', `event value of ${valueLen} bytes, expected ${VALUE_BYTES}`);
      return;
    }
    const seq = msg.readDoubleLE(valueAt);
    const sentUs = msg.readDoubleLE(valueAt + 8);
    this.received++;
    this.revSum += rev;
    if (!(rev > this.lastRev)) {
      this.outOfOrder++;
      t.noteError('OUT_OF_ORDER', `watcher got revision ${rev} after ${this.lastRev}`);
    }
    this.lastRev = rev;
    if (t.phase === 'measure') t.ops++;
    const s = this.s;
    if (s.firstMeasuredSeq >= 0 && seq >= s.firstMeasuredSeq && (s.endMeasuredSeq < 0 || seq < s.endMeasuredSeq)) {
      t.hist.record(now - sentUs);
    }
  }

  private verifyFull(msg: Buffer): void {
    this.verifyNext = false;
    const t = this.s.t;
    try {
      const r = etcdserverpb.WatchResponse.decode(msg);
      if (r.events.length === 0) throw new Error('first event response has no events');
      const kv = r.events[0].kv;
      const key = kv?.key ?? new Uint8Array(0);
      if (!Buffer.from(key).subarray(0, this.s.prefix.length).equals(this.s.prefix)) throw new Error(`event key outside the watched prefix`);
      if (!(Number(kv?.modRevision ?? 0) > 0)) throw new Error(`event without mod_revision`);
      t.verified++;
    } catch (e) {
      t.badResponses++;
      t.noteError('BAD_RESPONSE', e instanceof Error ? e.message : String(e));
    }
  }

  private bad(what: string): void {
    this.s.t.badResponses++;
    this.s.t.noteError('BAD_RESPONSE', what);
  }

  onEnd(status: string, detail: string): void {
    if (this.s.t.phase === 'closed') return;
    this.s.t.noteError(status === '0' ? 'WATCH_ENDED' : `WATCH_${status}`, `watch stream ended early: ${detail}`);
  }
}

function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

async function prepareWatchFanout(cfg: DriverConfig, so: StreamOptions): Promise<Driver> {
  if (so.watchers < 1) throw new Error('loadgen: --watchers must be >= 1');
  const t = new Tally();
  const prefix = Buffer.from(`/bench-watch/${process.pid}-${Date.now().toString(36)}/`, 'latin1');
  const st: WatchState = { t, firstMeasuredSeq: -1, endMeasuredSeq: -1, prefix };
  const sessions = await openSessions(cfg);
  const writerConn = connect('h2', cfg.target);
  const closeAll = (): void => {
    t.phase = 'closed';
    for (const s of sessions) s.close();
    writerConn.close();
  };
  try {
    await writerConn.ready(cfg.connectTimeoutMs);
    // Create the watchers, all on the same prefix, and wait for every `created`.
    let created = 0;
    const watchers: Watcher[] = [];
    const createReq = frame(
      etcdserverpb.WatchRequest.encode({ createRequest: { key: prefix, rangeEnd: prefixEnd(prefix) } }).finish(),
    );
    for (let i = 0; i < so.watchers; i++) {
      const w = new Watcher(st, () => created++);
      w.call = sessions[i % sessions.length].open('/etcdserverpb.Watch/Watch', w);
      w.call.send(createReq);
      watchers.push(w);
    }
    const createTimeoutMs = Math.max(30_000, so.watchers * 30);
    if (!(await waitUntil(() => created === so.watchers || t.errorsTotal > 0, createTimeoutMs)) || created !== so.watchers) {
      throw new Error(
        `watch-fanout: ${created} of ${so.watchers} watchers created after ${createTimeoutMs} ms; ` +
          `errors ${JSON.stringify(t.errorsByCode)} ${t.errorSamples.join('; ')}`,
      );
    }

    // The writer: open loop at watchRate puts/s (up to WRITER_MAX_IN_FLIGHT outstanding), or back-to-back.
    const putHist = new Histogram();
    const keys: Buffer[] = [];
    for (let i = 0; i < 256; i++) keys.push(Buffer.concat([prefix, Buffer.from(String(i).padStart(3, '0'), 'latin1')]));
    const value = Buffer.alloc(VALUE_BYTES);
    let seq = 0;
    let putsOk = 0;
    let putsFailed = 0;
    let putRevSum = 0;
    let inFlight = 0;
    let writerBehind = 0;
    let writing = false;
    let runStartUs = 0;
    const intervalUs = so.watchRate > 0 ? 1e6 / so.watchRate : 0;
    const maxInFlight = intervalUs > 0 ? WRITER_MAX_IN_FLIGHT : 1;
    let timer: NodeJS.Timeout | null = null;

    class PutSlot implements CallSink {
      readonly caller = writerConn.caller('/etcdserverpb.KV/Put', this);
      sentAt = 0;
      inMeasure = false;
      callComplete(errCode: string | null, detail: string, resp: Buffer | null): void {
        inFlight--;
        free.push(this);
        if (t.phase === 'closed') return;
        const now = nowUs();
        const rev = errCode === null && resp !== null ? headerRevision(resp) : -1;
        if (errCode !== null || rev <= 0) {
          putsFailed++;
          t.noteError(`PUT_${errCode ?? 'BAD_RESPONSE'}`, errCode !== null ? detail : 'put response without header.revision');
        } else {
          putsOk++;
          putRevSum += rev;
          if (this.inMeasure) putHist.record(now - this.sentAt);
        }
        if (intervalUs === 0) sendDue();
      }
    }
    const free: PutSlot[] = [];
    for (let i = 0; i < maxInFlight; i++) free.push(new PutSlot());

    const sendOne = (slot: PutSlot): void => {
      if (t.phase === 'measure' && st.firstMeasuredSeq < 0) st.firstMeasuredSeq = seq;
      slot.sentAt = nowUs();
      slot.inMeasure = t.phase === 'measure';
      value.writeDoubleLE(seq, 0);
      value.writeDoubleLE(slot.sentAt, 8);
      const req = etcdserverpb.PutRequest.encode({ key: keys[seq % keys.length], value }).finish();
      seq++;
      inFlight++;
      t.callsStarted++;
      slot.caller.send(frame(req));
    };
    /** Send every put that is due (rate mode) or the next one (back-to-back); re-arm the timer. */
    const sendDue = (): void => {
      timer = null;
      if (!writing) return;
      if (intervalUs === 0) {
        const slot = free.pop();
        if (slot !== undefined) sendOne(slot);
        return;
      }
      const now = nowUs();
      while (runStartUs + seq * intervalUs <= now) {
        const slot = free.pop();
        if (slot === undefined) {
          writerBehind++; // every slot busy: this put goes out late (the rate shortfall shows in putsPerSecInWindow)
          break;
        }
        sendOne(slot);
      }
      const waitMs = Math.max(0, (runStartUs + seq * intervalUs - nowUs()) / 1000);
      timer = setTimeout(sendDue, waitMs);
    };

    const go = (onMeasure: (edge: 'start' | 'end') => void): Promise<DriverResult> =>
      new Promise<DriverResult>((resolve) => {
        schedule(cfg, t, onMeasure, () => {
          writing = false;
          st.endMeasuredSeq = seq;
          if (timer !== null) clearTimeout(timer);
          const drainStart = Date.now();
          void waitUntil(() => inFlight === 0 && watchers.every((w) => w.received >= putsOk), cfg.drainTimeoutMs).then(() => {
            const expected = putsOk;
            let missingWatchers = 0;
            let missingEvents = 0;
            let extraEvents = 0;
            let wrongEvents = 0;
            let outOfOrder = 0;
            for (const w of watchers) {
              outOfOrder += w.outOfOrder;
              if (w.received < expected) {
                missingWatchers++;
                missingEvents += expected - w.received;
              } else if (w.received > expected) {
                extraEvents += w.received - expected;
              } else if (w.revSum !== putRevSum) {
                wrongEvents++;
              }
            }
            if (missingWatchers > 0) {
              t.noteError('MISSING_EVENTS', `${missingWatchers} of ${watchers.length} watchers lack ${missingEvents} events in total after ${cfg.drainTimeoutMs} ms of drain`, missingWatchers);
            }
            if (extraEvents > 0) t.noteError('EXTRA_EVENTS', `${extraEvents} events more than acknowledged puts (${putsFailed} puts failed)`);
            if (wrongEvents > 0) t.noteError('WRONG_EVENTS', `${wrongEvents} watchers got as many events as puts but not the put revisions`, wrongEvents);
            t.unfinished = inFlight;
            Object.assign(t.extra, {
              watchers: watchers.length,
              watchRate: so.watchRate,
              puts: putsOk,
              putsFailed,
              writerBehind,
              putsPerSecInWindow: 0,
              eventsExpected: expected * watchers.length,
              eventsReceived: watchers.reduce((sum, w) => sum + w.received, 0),
              missingWatchers,
              missingEvents,
              outOfOrder,
              drainMs: Date.now() - drainStart,
              putP50Ms: Math.round(putHist.quantileUs(0.5)) / 1000,
              putP99Ms: Math.round(putHist.quantileUs(0.99)) / 1000,
            });
            const windowS = Number(t.measureEnd - t.measureStart) / 1e9;
            t.extra.putsPerSecInWindow = windowS > 0 ? Math.round(putHist.total / windowS) : 0;
            const result = t.result();
            closeAll();
            resolve(result);
          });
        });
        writing = true;
        runStartUs = nowUs();
        sendDue();
      });
    return { go, close: closeAll };
  } catch (e) {
    closeAll();
    throw e;
  }
}

// ---------------------------------------------------------------------------------
// lease-keepalive

const KA_TTL = 3;

class KeepAliveClient implements StreamSink {
  call: BidiCall | null = null;
  private sentAt = 0;
  inFlight = false;
  private verifyNext = true;

  constructor(
    private readonly t: Tally,
    private readonly request: Buffer,
    private readonly id: string,
    private readonly mayStart: () => boolean,
  ) {}

  start(): void {
    const call = this.call;
    if (call === null || !call.open) return;
    this.inFlight = true;
    this.t.callsStarted++;
    this.sentAt = nowUs();
    call.send(this.request);
  }

  onMessage(msg: Buffer): void {
    const t = this.t;
    if (t.phase === 'closed') return;
    const rtt = nowUs() - this.sentAt;
    this.inFlight = false;
    if (!(scanField(msg, KA_TTL) > 0)) {
      t.badResponses++;
      t.noteError('LEASE_EXPIRED', `keep-alive response without a positive TTL for lease ${this.id}`);
    } else if (this.verifyNext && !this.verify(msg)) {
      // counted in verify
    } else if (t.phase === 'measure') {
      t.ops++;
      t.hist.record(rtt);
    }
    if (this.mayStart()) this.start();
  }

  private verify(msg: Buffer): boolean {
    this.verifyNext = false;
    try {
      const r = etcdserverpb.LeaseKeepAliveResponse.decode(msg);
      if (String(r.ID) !== this.id) throw new Error(`keep-alive answered for lease ${String(r.ID)}, sent ${this.id}`);
      if (Number(r.TTL) <= 0 || Number(r.TTL) > LEASE_TTL_S) throw new Error(`keep-alive TTL ${String(r.TTL)}`);
      this.t.verified++;
      return true;
    } catch (e) {
      this.t.badResponses++;
      this.t.noteError('BAD_RESPONSE', e instanceof Error ? e.message : String(e));
      return false;
    }
  }

  onEnd(status: string, detail: string): void {
    if (this.t.phase === 'closed') return;
    if (this.inFlight) this.inFlight = false;
    this.t.noteError(status === '0' ? 'STREAM_ENDED' : `STREAM_${status}`, `keep-alive stream ended early: ${detail}`);
  }
}

async function prepareLeaseKeepAlive(cfg: DriverConfig): Promise<Driver> {
  const t = new Tally();
  const sessions = await openSessions(cfg);
  const grantConn = connect('h2', cfg.target);
  const closeAll = (): void => {
    t.phase = 'closed';
    for (const s of sessions) s.close();
    grantConn.close();
  };
  try {
    await grantConn.ready(cfg.connectTimeoutMs);
    const grantReq = etcdserverpb.LeaseGrantRequest.encode({ TTL: LEASE_TTL_S }).finish();
    const grants = await Promise.all(
      Array.from({ length: cfg.clients }, async () => {
        const r = etcdserverpb.LeaseGrantResponse.decode(await unary(grantConn, '/etcdserverpb.Lease/LeaseGrant', grantReq));
        if (r.error !== '' || !(Number(r.TTL) > 0)) throw new Error(`LeaseGrant: ${r.error} TTL ${String(r.TTL)}`);
        return r.ID;
      }),
    );
    let mayStart = (): boolean => t.phase === 'warmup' || t.phase === 'measure';
    const clients = grants.map((id, i) => {
      const req = frame(etcdserverpb.LeaseKeepAliveRequest.encode({ ID: id }).finish());
      const c = new KeepAliveClient(t, req, String(id), () => mayStart());
      c.call = sessions[i % sessions.length].open('/etcdserverpb.Lease/LeaseKeepAlive', c);
      return c;
    });
    const go = (onMeasure: (edge: 'start' | 'end') => void): Promise<DriverResult> =>
      new Promise<DriverResult>((resolve) => {
        schedule(cfg, t, onMeasure, () => {
          mayStart = () => false;
          void waitUntil(() => clients.every((c) => !c.inFlight), cfg.drainTimeoutMs).then(() => {
            t.unfinished = clients.filter((c) => c.inFlight).length;
            t.extra.leases = clients.length;
            const result = t.result();
            closeAll();
            resolve(result);
          });
        });
        for (const c of clients) c.start();
      });
    return { go, close: closeAll };
  } catch (e) {
    closeAll();
    throw e;
  }
}
