/**
 * The closed-loop unary driver that runs inside one load-generator thread.
 *
 * `clients` virtual clients each keep exactly one call in flight: when a call completes,
 * its latency is recorded and the next call starts from the completion callback. The
 * clients share `conns` HTTP/2 connections round-robin (transports.ts). Requests are
 * encoded once before the run; responses are checked without decoding, and the first
 * response of each client is decoded in full.
 *
 * A duration run has a warm-up (not counted), a measured window and a drain (calls still
 * in flight at the end complete but are not counted). A count run measures every call.
 */
import { Histogram, type HistogramData } from './histogram';
import type { StreamOptions } from './stream-driver';
import { connect, type CallSink, type Caller, type Connection, type TransportKind } from './transports';
import { getWorkload, type KeyOptions, type Workload } from './workloads';

export interface DriverConfig {
  /** host:port of the server (the first of `targets`). */
  target: string;
  /** host:port of every member to use: connection i goes to targets[i % targets.length] (default [target]). */
  targets?: string[];
  workload: string;
  keys: KeyOptions;
  /** Concurrent calls in flight in this thread. */
  clients: number;
  /** HTTP/2 connections in this thread. */
  conns: number;
  transport: TransportKind;
  warmupMs: number;
  /** Measured window; ignored when count > 0. */
  durationMs: number;
  /** Calls to make in total in this thread (0: run for warmupMs + durationMs). */
  count: number;
  /** With keyOrder 'seq': this thread walks keys keyStart, keyStart + keyStride, ... */
  keyStart: number;
  keyStride: number;
  /** How long to wait for in-flight calls after the window before abandoning them. */
  drainTimeoutMs: number;
  /** How long to wait for the connections at start. */
  connectTimeoutMs: number;
  /** Options of the streaming workloads (stream-driver.ts). */
  stream?: StreamOptions;
}

export interface DriverResult {
  hist: HistogramData;
  /** Successful calls completed in the measured window. */
  ops: number;
  /** Length of the measured window (hrtime). */
  windowMs: number;
  /** Failed calls (RPC errors and bad responses) completed in the measured window. */
  errors: number;
  /** Failed calls over the whole run, warm-up and drain included. */
  errorsTotal: number;
  /** Responses that arrived but failed the workload's check (also counted in errors). */
  badResponses: number;
  /** gRPC status name (or BAD_RESPONSE) -> count, whole run. */
  errorsByCode: Record<string, number>;
  /** The first few error messages. */
  errorSamples: string[];
  /** Calls started over the whole run. */
  callsStarted: number;
  /** Calls still in flight when the drain timed out (abandoned, not counted). */
  unfinished: number;
  /** Responses fully decoded and verified (the first one of each client). */
  verified: number;
  /** Workload-specific counters (streaming workloads). */
  extra?: Record<string, number>;
}

const ERROR_SAMPLES_MAX = 5;
type Phase = 'idle' | 'warmup' | 'measure' | 'drain' | 'closed';

class Run {
  readonly hist = new Histogram();
  readonly workload: Workload;
  readonly requests: Buffer[];
  readonly conns: Connection[] = [];
  phase: Phase = 'idle';
  ops = 0;
  errors = 0;
  errorsTotal = 0;
  badResponses = 0;
  readonly errorsByCode: Record<string, number> = {};
  readonly errorSamples: string[] = [];
  callsStarted = 0;
  inFlight = 0;
  verified = 0;
  nextSeqKey: number;
  measureStart = 0n;
  measureEnd = 0n;
  onIdle: (() => void) | null = null;

  constructor(readonly cfg: DriverConfig) {
    this.workload = getWorkload(cfg.workload);
    this.nextSeqKey = cfg.keyStart % cfg.keys.keySpace;
    const targets = cfg.targets !== undefined && cfg.targets.length > 0 ? cfg.targets : [cfg.target];
    for (let i = 0; i < cfg.conns; i++) this.conns.push(connect(cfg.transport, targets[i % targets.length]));
    // Every connection of a transport frames alike, so the first one prepares the pool.
    this.requests = this.conns[0].prepare(this.workload.encodeRequests(cfg.keys));
  }

  nextRequest(): Buffer {
    const n = this.cfg.keys.keySpace;
    if (this.cfg.keys.keyOrder === 'random') return this.requests[(Math.random() * n) | 0];
    const i = this.nextSeqKey;
    this.nextSeqKey += this.cfg.keyStride;
    if (this.nextSeqKey >= n) this.nextSeqKey %= n;
    return this.requests[i];
  }

  /** Whether another call may start now. */
  mayStart(): boolean {
    if (this.phase !== 'warmup' && this.phase !== 'measure') return false;
    return this.cfg.count === 0 || this.callsStarted < this.cfg.count;
  }

  noteError(code: string, message: string): void {
    this.errorsTotal++;
    if (this.phase === 'measure') this.errors++;
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    if (this.errorSamples.length < ERROR_SAMPLES_MAX) this.errorSamples.push(`${code}: ${message}`);
  }

  callDone(): void {
    this.inFlight--;
    if (this.inFlight === 0 && !this.mayStart() && this.onIdle !== null) this.onIdle();
  }
}

/** One virtual client: at most one call in flight; its completion path allocates nothing of its own. */
class LoopClient implements CallSink {
  private startedAt = 0n;
  private verifyNext = true;
  private readonly caller: Caller;

  constructor(
    private readonly run: Run,
    conn: Connection,
  ) {
    this.caller = conn.caller(run.workload.method, this);
  }

  start(): void {
    const run = this.run;
    run.callsStarted++;
    run.inFlight++;
    this.startedAt = process.hrtime.bigint();
    this.caller.send(run.nextRequest());
  }

  callComplete(errCode: string | null, detail: string, resp: Buffer | null): void {
    const run = this.run;
    if (run.phase === 'closed') return;
    const latencyUs = Number(process.hrtime.bigint() - this.startedAt) / 1000;
    if (errCode !== null || resp === null) {
      run.noteError(errCode ?? 'NO_RESPONSE', detail);
    } else if (!run.workload.check(resp, run.cfg.keys)) {
      run.badResponses++;
      run.noteError('BAD_RESPONSE', `response of ${resp.length} bytes failed the ${run.workload.name} check`);
    } else if (this.verifyNext && !this.verify(resp)) {
      // counted in verify
    } else if (run.phase === 'measure') {
      run.ops++;
      run.hist.record(latencyUs);
    }
    run.callDone();
    if (run.mayStart()) this.start();
  }

  private verify(resp: Buffer): boolean {
    this.verifyNext = false;
    try {
      this.run.workload.verify(resp, this.run.cfg.keys);
      this.run.verified++;
      return true;
    } catch (e) {
      this.run.badResponses++;
      this.run.noteError('BAD_RESPONSE', e instanceof Error ? e.message : String(e));
      return false;
    }
  }
}

export interface Driver {
  /** Run the load; `onMeasure` is told when the measured window starts and ends. */
  go(onMeasure: (edge: 'start' | 'end') => void): Promise<DriverResult>;
  close(): void;
}

/** Encode the request pool and connect; resolves when every connection is up. */
export async function prepareDriver(cfg: DriverConfig): Promise<Driver> {
  if (cfg.clients < 1 || cfg.conns < 1) throw new Error('loadgen: need clients >= 1 and conns >= 1');
  const run = new Run(cfg);
  try {
    await Promise.all(run.conns.map((c) => c.ready(cfg.connectTimeoutMs)));
  } catch (e) {
    for (const c of run.conns) c.close();
    throw new Error(`loadgen: cannot connect to ${(cfg.targets ?? [cfg.target]).join(',')}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const clients: LoopClient[] = [];
  for (let i = 0; i < cfg.clients; i++) clients.push(new LoopClient(run, run.conns[i % run.conns.length]));

  const close = (): void => {
    run.phase = 'closed';
    for (const c of run.conns) c.close();
  };

  const go = (onMeasure: (edge: 'start' | 'end') => void): Promise<DriverResult> =>
    new Promise<DriverResult>((resolve) => {
      const startMeasure = (): void => {
        run.phase = 'measure';
        run.measureStart = process.hrtime.bigint();
        onMeasure('start');
      };
      const endMeasure = (): void => {
        if (run.phase !== 'measure') return;
        run.measureEnd = process.hrtime.bigint();
        run.phase = 'drain';
        onMeasure('end');
      };
      let drainTimer: NodeJS.Timeout | null = null;
      const finish = (): void => {
        if (drainTimer !== null) clearTimeout(drainTimer);
        if (run.measureEnd === 0n) endMeasure();
        const unfinished = run.inFlight;
        close();
        resolve({
          hist: run.hist.data(),
          ops: run.ops,
          windowMs: Number(run.measureEnd - run.measureStart) / 1e6,
          errors: run.errors,
          errorsTotal: run.errorsTotal,
          badResponses: run.badResponses,
          errorsByCode: run.errorsByCode,
          errorSamples: run.errorSamples,
          callsStarted: run.callsStarted,
          unfinished,
          verified: run.verified,
        });
      };
      run.onIdle = finish;

      if (cfg.count > 0) {
        startMeasure();
      } else {
        run.phase = 'warmup';
        if (cfg.warmupMs <= 0) startMeasure();
        else setTimeout(startMeasure, cfg.warmupMs);
        setTimeout(() => {
          endMeasure();
          if (run.inFlight === 0) finish();
          else drainTimer = setTimeout(finish, cfg.drainTimeoutMs);
        }, Math.max(cfg.warmupMs, 0) + cfg.durationMs);
      }
      const firstWave = cfg.count > 0 ? Math.min(clients.length, cfg.count) : clients.length;
      for (let i = 0; i < firstWave; i++) clients[i].start();
      if (firstWave === 0) finish();
    });

  return { go, close };
}
