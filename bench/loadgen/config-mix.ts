/**
 * config-mix: a configuration service under load, in one load-generator thread.
 *
 * Before the run, `mixKeys` config keys (under a prefix of their own, values of
 * --val-size bytes) are put once, then `mixWatchers` watchers are created on the prefix
 * (over `conns` stream connections spread over the members) and every `created` awaited.
 * During the run:
 *
 * - readers: `clients` closed-loop clients over `conns` unary connections (spread over
 *   the members), each with one Range of a random config key in flight; a read is
 *   serializable with probability `mixSerializable`, else linearizable. Every response
 *   must hold exactly one kv; each reader's first response is decoded in full (the key
 *   asked for, a value of --val-size bytes). ops/s and the main latency are the reads;
 *   each kind's rate and latency are in the details.
 * - one writer (its own connection, to the first endpoint) updates config keys
 *   round-robin at `mixWriteRate` puts/s, open loop, with the send time in the value.
 * - the watchers receive every write: delivery latency = put sent -> event received,
 *   and after the window every watcher must have exactly the acknowledged writes (the
 *   same check as watch-fanout: missing, extra or different events are errors).
 *
 * Reads, writes and events all run on one event loop, so a slow server shows up as a
 * read rate drop, a write latency rise and a delivery delay at the same time.
 */
import { etcdserverpb } from '../../src/gen/proto';
import type { Driver, DriverConfig, DriverResult } from './driver';
import { Histogram } from './histogram';
import { scanField } from './proto-scan';
import {
  createWatchers,
  drainAndCheckWatchers,
  newWatchState,
  openSessions,
  RateWriter,
  schedule,
  STREAM_DEFAULTS,
  Tally,
  unary,
  VALUE_BYTES,
  waitUntil,
} from './stream-driver';
import { connect, type CallSink, type Caller, type Connection } from './transports';
import { valueOf } from './workloads';

const FIELD_KVS = 2; // RangeResponse.kvs
const PRELOAD_IN_FLIGHT = 16;

interface MixRun {
  t: Tally;
  linHist: Histogram;
  serHist: Histogram;
  linOps: number;
  serOps: number;
  inFlight: number;
  reading: boolean;
  serFraction: number;
  /** Framed Range requests for config key k: [linearizable, serializable]. */
  lin: Buffer[];
  ser: Buffer[];
  keys: Buffer[];
  valSize: number;
}

class MixReader implements CallSink {
  private readonly caller: Caller;
  private startedNs = 0n;
  private key = 0;
  private serializable = false;
  private verifyNext = true;

  constructor(
    private readonly r: MixRun,
    conn: Connection,
  ) {
    this.caller = conn.caller('/etcdserverpb.KV/Range', this);
  }

  start(): void {
    const r = this.r;
    this.key = (Math.random() * r.keys.length) | 0;
    this.serializable = Math.random() < r.serFraction;
    r.inFlight++;
    r.t.callsStarted++;
    this.startedNs = process.hrtime.bigint();
    this.caller.send(this.serializable ? r.ser[this.key] : r.lin[this.key]);
  }

  callComplete(errCode: string | null, detail: string, resp: Buffer | null): void {
    const r = this.r;
    const t = r.t;
    r.inFlight--;
    if (t.phase === 'closed') return;
    const us = Number(process.hrtime.bigint() - this.startedNs) / 1000;
    if (errCode !== null || resp === null) {
      t.noteError(`RANGE_${errCode ?? 'NO_RESPONSE'}`, detail);
    } else if (scanField(resp, FIELD_KVS) !== 1) {
      t.badResponses++;
      t.noteError('BAD_RESPONSE', `config read of ${resp.length} bytes does not hold exactly one kv`);
    } else if (this.verifyNext && !this.verify(resp)) {
      // counted in verify
    } else if (t.phase === 'measure') {
      t.ops++;
      t.hist.record(us);
      if (this.serializable) {
        r.serOps++;
        r.serHist.record(us);
      } else {
        r.linOps++;
        r.linHist.record(us);
      }
    }
    if (r.reading) this.start();
  }

  private verify(resp: Buffer): boolean {
    this.verifyNext = false;
    const t = this.r.t;
    try {
      const m = etcdserverpb.RangeResponse.decode(resp);
      const kv = m.kvs[0];
      if (!Buffer.from(kv.key ?? new Uint8Array(0)).equals(this.r.keys[this.key])) throw new Error('config read returned another key');
      if ((kv.value?.length ?? 0) !== this.r.valSize) throw new Error(`config read returned a value of ${kv.value?.length ?? 0} bytes`);
      t.verified++;
      return true;
    } catch (e) {
      t.badResponses++;
      t.noteError('BAD_RESPONSE', e instanceof Error ? e.message : String(e));
      return false;
    }
  }
}

function ms(h: Histogram, q: number): number {
  return h.total > 0 ? Math.round(h.quantileUs(q)) / 1000 : 0;
}

export async function prepareConfigMix(cfg: DriverConfig): Promise<Driver> {
  const so = cfg.stream ?? STREAM_DEFAULTS;
  if (cfg.count > 0) throw new Error('loadgen: config-mix runs for a duration, not a count');
  if (!Number.isInteger(so.mixKeys) || so.mixKeys < 1) throw new Error('loadgen: --mix-keys must be >= 1');
  if (!Number.isInteger(so.mixWatchers) || so.mixWatchers < 1) throw new Error('loadgen: --mix-watchers must be >= 1');
  if (!(so.mixWriteRate > 0)) throw new Error('loadgen: --mix-write-rate must be > 0 (config-mix is a trickle of writes, open loop)');
  if (!(so.mixSerializable >= 0 && so.mixSerializable <= 1)) throw new Error('loadgen: --mix-serializable must be in [0, 1]');
  const valSize = cfg.keys.valSize;
  if (valSize < VALUE_BYTES) throw new Error(`loadgen: config-mix needs --val-size >= ${VALUE_BYTES} (the value carries the write's send time)`);

  const t = new Tally();
  const prefix = Buffer.from(`/bench-config/${process.pid}-${Date.now().toString(36)}/`, 'latin1');
  const st = newWatchState(t, prefix, { countOps: false, valueBytes: valSize });
  const keys: Buffer[] = [];
  const width = String(so.mixKeys - 1).length;
  for (let i = 0; i < so.mixKeys; i++) keys.push(Buffer.concat([prefix, Buffer.from(`key-${String(i).padStart(width, '0')}`, 'latin1')]));

  const targets = cfg.targets !== undefined && cfg.targets.length > 0 ? cfg.targets : [cfg.target];
  const readConns: Connection[] = [];
  for (let i = 0; i < cfg.conns; i++) readConns.push(connect(cfg.transport, targets[i % targets.length]));
  const writerConn = connect('h2', cfg.target);
  let sessions: Awaited<ReturnType<typeof openSessions>> = [];
  const closeAll = (): void => {
    t.phase = 'closed';
    for (const s of sessions) s.close();
    for (const c of readConns) c.close();
    writerConn.close();
  };
  try {
    await Promise.all([writerConn, ...readConns].map((c) => c.ready(cfg.connectTimeoutMs)));
    sessions = await openSessions(cfg, targets);

    // Every config key exists before the readers start (values of --val-size, sequence -1).
    const initial = Buffer.alloc(valSize);
    initial.writeDoubleLE(-1, 0);
    if (valSize > VALUE_BYTES) valueOf(valSize - VALUE_BYTES).copy(initial, VALUE_BYTES);
    let next = 0;
    await Promise.all(
      Array.from({ length: PRELOAD_IN_FLIGHT }, async () => {
        while (next < keys.length) {
          const key = keys[next++];
          await unary(writerConn, '/etcdserverpb.KV/Put', etcdserverpb.PutRequest.encode({ key, value: initial }).finish());
        }
      }),
    );
    // Watchers start after that preload, at the current revision: they see only the run's writes.
    const watchers = await createWatchers(st, sessions, so.mixWatchers, 'config-mix');
    const writer = new RateWriter(writerConn, keys, st, so.mixWriteRate);

    const enc = (serializable: boolean): Buffer[] =>
      readConns[0].prepare(keys.map((key) => Buffer.from(etcdserverpb.RangeRequest.encode({ key, serializable }).finish())));
    const run: MixRun = {
      t,
      linHist: new Histogram(),
      serHist: new Histogram(),
      linOps: 0,
      serOps: 0,
      inFlight: 0,
      reading: false,
      serFraction: so.mixSerializable,
      lin: enc(false),
      ser: enc(true),
      keys,
      valSize,
    };
    const readers: MixReader[] = [];
    for (let i = 0; i < cfg.clients; i++) readers.push(new MixReader(run, readConns[i % readConns.length]));

    const go = (onMeasure: (edge: 'start' | 'end') => void): Promise<DriverResult> =>
      new Promise<DriverResult>((resolve) => {
        schedule(cfg, t, onMeasure, () => {
          run.reading = false;
          void (async () => {
            await drainAndCheckWatchers(st, writer, watchers, cfg.drainTimeoutMs, so.mixWriteRate);
            await waitUntil(() => run.inFlight === 0, cfg.drainTimeoutMs);
            const windowS = Number(t.measureEnd - t.measureStart) / 1e9;
            t.unfinished = writer.inFlight + run.inFlight;
            Object.assign(t.extra, {
              readers: readers.length,
              mixKeys: keys.length,
              readsLinearizablePerSec: windowS > 0 ? Math.round(run.linOps / windowS) : 0,
              readLinP50Ms: ms(run.linHist, 0.5),
              readLinP99Ms: ms(run.linHist, 0.99),
              readsSerializablePerSec: windowS > 0 ? Math.round(run.serOps / windowS) : 0,
              readSerP50Ms: ms(run.serHist, 0.5),
              readSerP99Ms: ms(run.serHist, 0.99),
              eventsPerSecInWindow: windowS > 0 ? Math.round(st.eventsInWindow / windowS) : 0,
              watchP50Ms: ms(st.hist, 0.5),
              watchP99Ms: ms(st.hist, 0.99),
            });
            const result = t.result();
            closeAll();
            resolve(result);
          })();
        });
        run.reading = true;
        for (const r of readers) r.start();
        writer.start();
      });
    return { go, close: closeAll };
  } catch (e) {
    closeAll();
    throw e;
  }
}
