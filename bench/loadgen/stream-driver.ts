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
 *
 * config-mix (config-mix.ts) reuses the watchers, the writer and the drain check below.
 */
import { etcdserverpb } from '../../src/gen/proto';
import type { Driver, DriverConfig, DriverResult } from './driver';
import { Histogram } from './histogram';
import { scanField } from './proto-scan';
import { BidiCall, frame, H2Session, type StreamSink } from './stream';
import { connect, type CallSink, type Caller, type Connection } from './transports';
import { valueOf } from './workloads';

export interface StreamOptions {
  /** watch-fanout: watch streams (one watcher each). */
  watchers: number;
  /** watch-fanout: writer puts per second; 0 = back-to-back (one put in flight). */
  watchRate: number;
  /** config-mix: config keys (read by the readers, updated by the writer). */
  mixKeys: number;
  /** config-mix: watchers on the config prefix. */
  mixWatchers: number;
  /** config-mix: writer puts per second (open loop). */
  mixWriteRate: number;
  /** config-mix: fraction of reads that are serializable (the rest linearizable). */
  mixSerializable: number;
}

export const STREAM_DEFAULTS: StreamOptions = { watchers: 1000, watchRate: 200, mixKeys: 300, mixWatchers: 200, mixWriteRate: 50, mixSerializable: 0.5 };

const ERROR_SAMPLES_MAX = 5;
const LEASE_TTL_S = 600;
export const VALUE_BYTES = 16; // float64 LE sequence number, float64 LE send time (µs, hrtime)
/** Open-loop writer: most puts outstanding at once (beyond that it falls behind its rate, visibly). */
const WRITER_MAX_IN_FLIGHT = 64;
type Phase = 'idle' | 'warmup' | 'measure' | 'drain' | 'closed';

export function nowUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}

/** Counters shared by the streaming drivers; becomes the DriverResult. */
export class Tally {
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
export function schedule(cfg: DriverConfig, t: Tally, onMeasure: (edge: 'start' | 'end') => void, onWindowEnd: () => void): void {
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

/** `conns` stream sessions, session i to targets[i mod n] (default: all to cfg.target). */
export async function openSessions(cfg: DriverConfig, targets: string[] = [cfg.target]): Promise<H2Session[]> {
  const sessions: H2Session[] = [];
  for (let i = 0; i < cfg.conns; i++) sessions.push(new H2Session(targets[i % targets.length]));
  try {
    await Promise.all(sessions.map((s) => s.ready(cfg.connectTimeoutMs)));
  } catch (e) {
    for (const s of sessions) s.close();
    throw new Error(`loadgen: cannot connect to ${targets.join(',')}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return sessions;
}

/** One unary call through the h2 transport, as a promise (setup only, not timed). */
export function unary(conn: Connection, method: string, request: Uint8Array): Promise<Buffer> {
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

export function waitUntil(cond: () => boolean, timeoutMs: number): Promise<boolean> {
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
// Watchers and the open-loop writer (watch-fanout, and the watch part of config-mix)

export interface WatchState {
  t: Tally;
  /** Delivery latency (put sent -> event received) of events whose put was sent inside the window. */
  hist: Histogram;
  /** Whether events received inside the window count as the run's ops (watch-fanout). */
  countOps: boolean;
  /** Events received by all watchers inside the window. */
  eventsInWindow: number;
  /** Bytes of every value the writer puts (the first VALUE_BYTES carry sequence number and send time). */
  valueBytes: number;
  /** First and one-past-last sequence numbers sent inside the window (-1: not yet). */
  firstMeasuredSeq: number;
  endMeasuredSeq: number;
  prefix: Buffer;
}

export function newWatchState(t: Tally, prefix: Buffer, opts: { countOps: boolean; valueBytes: number; hist?: Histogram }): WatchState {
  if (opts.valueBytes < VALUE_BYTES) throw new Error(`loadgen: watched values need at least ${VALUE_BYTES} bytes`);
  return {
    t,
    hist: opts.hist ?? new Histogram(),
    countOps: opts.countOps,
    eventsInWindow: 0,
    valueBytes: opts.valueBytes,
    firstMeasuredSeq: -1,
    endMeasuredSeq: -1,
    prefix,
  };
}

export class Watcher implements StreamSink {
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
    const s = this.s;
    const t = s.t;
    if (valueLen !== s.valueBytes) {
      t.badResponses++;
      t.noteError('BAD_EVENT', `event value of ${valueLen} bytes, expected ${s.valueBytes}`);
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
    if (t.phase === 'measure') {
      s.eventsInWindow++;
      if (s.countOps) t.ops++;
    }
    if (s.firstMeasuredSeq >= 0 && seq >= s.firstMeasuredSeq && (s.endMeasuredSeq < 0 || seq < s.endMeasuredSeq)) {
      s.hist.record(now - sentUs);
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

export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * `count` watchers on `prefix`, watcher i on sessions[i mod n]; resolves when every one
 * has its `created` response (or throws, naming how many got one).
 */
export async function createWatchers(st: WatchState, sessions: H2Session[], count: number, what: string): Promise<Watcher[]> {
  const t = st.t;
  let created = 0;
  const watchers: Watcher[] = [];
  const createReq = frame(etcdserverpb.WatchRequest.encode({ createRequest: { key: st.prefix, rangeEnd: prefixEnd(st.prefix) } }).finish());
  for (let i = 0; i < count; i++) {
    const w = new Watcher(st, () => created++);
    w.call = sessions[i % sessions.length].open('/etcdserverpb.Watch/Watch', w);
    w.call.send(createReq);
    watchers.push(w);
  }
  const createTimeoutMs = Math.max(30_000, count * 30);
  if (!(await waitUntil(() => created === count || t.errorsTotal > 0, createTimeoutMs)) || created !== count) {
    throw new Error(
      `${what}: ${created} of ${count} watchers created after ${createTimeoutMs} ms; ` +
        `errors ${JSON.stringify(t.errorsByCode)} ${t.errorSamples.join('; ')}`,
    );
  }
  return watchers;
}

/** One in-flight put of the writer; reused (the writer keeps a fixed pool of them). */
class PutSlot implements CallSink {
  readonly caller: Caller;
  sentAt = 0;
  inMeasure = false;

  constructor(
    private readonly w: RateWriter,
    conn: Connection,
  ) {
    this.caller = conn.caller('/etcdserverpb.KV/Put', this);
  }

  callComplete(errCode: string | null, detail: string, resp: Buffer | null): void {
    this.w.complete(this, errCode, detail, resp);
  }
}

/**
 * The writer of the watched prefix: open loop at `rate` puts/s (a put is sent when due,
 * whether or not earlier ones have been answered, up to WRITER_MAX_IN_FLIGHT), or with
 * rate 0 back-to-back with one put in flight. Puts walk `keys` round-robin; each value
 * carries the sequence number and send time (float64 LE each), padded to valueBytes.
 */
export class RateWriter {
  readonly putHist = new Histogram();
  seq = 0;
  putsOk = 0;
  putsFailed = 0;
  putRevSum = 0;
  inFlight = 0;
  writerBehind = 0;
  private writing = false;
  private runStartUs = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly intervalUs: number;
  private readonly free: PutSlot[] = [];
  private readonly value: Buffer;
  private readonly sendDueBound = (): void => this.sendDue();

  constructor(
    conn: Connection,
    private readonly keys: Buffer[],
    private readonly st: WatchState,
    rate: number,
  ) {
    this.intervalUs = rate > 0 ? 1e6 / rate : 0;
    const slots = this.intervalUs > 0 ? WRITER_MAX_IN_FLIGHT : 1;
    for (let i = 0; i < slots; i++) this.free.push(new PutSlot(this, conn));
    this.value = Buffer.alloc(st.valueBytes);
    if (st.valueBytes > VALUE_BYTES) valueOf(st.valueBytes - VALUE_BYTES).copy(this.value, VALUE_BYTES);
  }

  start(): void {
    this.writing = true;
    this.runStartUs = nowUs();
    this.sendDue();
  }

  /** Stop sending; puts in flight still complete. Marks the end of the measured sequence numbers. */
  stop(): void {
    this.writing = false;
    this.st.endMeasuredSeq = this.seq;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  complete(slot: PutSlot, errCode: string | null, detail: string, resp: Buffer | null): void {
    this.inFlight--;
    this.free.push(slot);
    const t = this.st.t;
    if (t.phase === 'closed') return;
    const now = nowUs();
    const rev = errCode === null && resp !== null ? headerRevision(resp) : -1;
    if (errCode !== null || rev <= 0) {
      this.putsFailed++;
      t.noteError(`PUT_${errCode ?? 'BAD_RESPONSE'}`, errCode !== null ? detail : 'put response without header.revision');
    } else {
      this.putsOk++;
      this.putRevSum += rev;
      if (slot.inMeasure) this.putHist.record(now - slot.sentAt);
    }
    if (this.intervalUs === 0) this.sendDue();
  }

  private sendOne(slot: PutSlot): void {
    const st = this.st;
    if (st.t.phase === 'measure' && st.firstMeasuredSeq < 0) st.firstMeasuredSeq = this.seq;
    slot.sentAt = nowUs();
    slot.inMeasure = st.t.phase === 'measure';
    this.value.writeDoubleLE(this.seq, 0);
    this.value.writeDoubleLE(slot.sentAt, 8);
    const req = etcdserverpb.PutRequest.encode({ key: this.keys[this.seq % this.keys.length], value: this.value }).finish();
    this.seq++;
    this.inFlight++;
    st.t.callsStarted++;
    slot.caller.send(frame(req));
  }

  /** Send every put that is due (rate mode) or the next one (back-to-back); re-arm the timer. */
  private sendDue(): void {
    this.timer = null;
    if (!this.writing) return;
    if (this.intervalUs === 0) {
      const slot = this.free.pop();
      if (slot !== undefined) this.sendOne(slot);
      return;
    }
    const now = nowUs();
    while (this.runStartUs + this.seq * this.intervalUs <= now) {
      const slot = this.free.pop();
      if (slot === undefined) {
        this.writerBehind++; // every slot busy: this put goes out late (the rate shortfall shows in putsPerSecInWindow)
        break;
      }
      this.sendOne(slot);
    }
    const waitMs = Math.max(0, (this.runStartUs + this.seq * this.intervalUs - nowUs()) / 1000);
    this.timer = setTimeout(this.sendDueBound, waitMs);
  }
}

/**
 * After the window: stop the writer, wait (up to drainTimeoutMs) until no put is in
 * flight and every watcher has as many events as puts were acknowledged, then count
 * missing, extra and wrong events as errors and put the writer's and watchers' figures
 * into t.extra.
 */
export async function drainAndCheckWatchers(st: WatchState, writer: RateWriter, watchers: Watcher[], drainTimeoutMs: number, watchRate: number): Promise<void> {
  const t = st.t;
  writer.stop();
  const drainStart = Date.now();
  await waitUntil(() => writer.inFlight === 0 && watchers.every((w) => w.received >= writer.putsOk), drainTimeoutMs);
  const expected = writer.putsOk;
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
    } else if (w.revSum !== writer.putRevSum) {
      wrongEvents++;
    }
  }
  if (missingWatchers > 0) {
    t.noteError('MISSING_EVENTS', `${missingWatchers} of ${watchers.length} watchers lack ${missingEvents} events in total after ${drainTimeoutMs} ms of drain`, missingWatchers);
  }
  if (extraEvents > 0) t.noteError('EXTRA_EVENTS', `${extraEvents} events more than acknowledged puts (${writer.putsFailed} puts failed)`);
  if (wrongEvents > 0) t.noteError('WRONG_EVENTS', `${wrongEvents} watchers got as many events as puts but not the put revisions`, wrongEvents);
  const windowS = Number(t.measureEnd - t.measureStart) / 1e9;
  Object.assign(t.extra, {
    watchers: watchers.length,
    watchRate,
    puts: writer.putsOk,
    putsFailed: writer.putsFailed,
    writerBehind: writer.writerBehind,
    putsPerSecInWindow: windowS > 0 ? Math.round(writer.putHist.total / windowS) : 0,
    eventsExpected: expected * watchers.length,
    eventsReceived: watchers.reduce((sum, w) => sum + w.received, 0),
    missingWatchers,
    missingEvents,
    outOfOrder,
    drainMs: Date.now() - drainStart,
    putP50Ms: Math.round(writer.putHist.quantileUs(0.5)) / 1000,
    putP99Ms: Math.round(writer.putHist.quantileUs(0.99)) / 1000,
  });
}

async function prepareWatchFanout(cfg: DriverConfig, so: StreamOptions): Promise<Driver> {
  if (so.watchers < 1) throw new Error('loadgen: --watchers must be >= 1');
  const t = new Tally();
  const prefix = Buffer.from(`/bench-watch/${process.pid}-${Date.now().toString(36)}/`, 'latin1');
  // ops = events in the window, latency = their delivery: both go straight into the run's tally.
  const st = newWatchState(t, prefix, { countOps: true, valueBytes: VALUE_BYTES, hist: t.hist });
  const sessions = await openSessions(cfg);
  const writerConn = connect('h2', cfg.target);
  const closeAll = (): void => {
    t.phase = 'closed';
    for (const s of sessions) s.close();
    writerConn.close();
  };
  try {
    await writerConn.ready(cfg.connectTimeoutMs);
    const watchers = await createWatchers(st, sessions, so.watchers, 'watch-fanout');
    const keys: Buffer[] = [];
    for (let i = 0; i < 256; i++) keys.push(Buffer.concat([prefix, Buffer.from(String(i).padStart(3, '0'), 'latin1')]));
    const writer = new RateWriter(writerConn, keys, st, so.watchRate);

    const go = (onMeasure: (edge: 'start' | 'end') => void): Promise<DriverResult> =>
      new Promise<DriverResult>((resolve) => {
        schedule(cfg, t, onMeasure, () => {
          void drainAndCheckWatchers(st, writer, watchers, cfg.drainTimeoutMs, so.watchRate).then(() => {
            t.unfinished = writer.inFlight;
            const result = t.result();
            closeAll();
            resolve(result);
          });
        });
        writer.start();
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
