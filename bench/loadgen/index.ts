/**
 * The load generator's main-thread API: split the clients, connections and key walk over
 * `workers` worker threads, start them together, merge their histograms and counters,
 * and account the CPU used by the load generator (and optionally the server) during the
 * measured window.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { machineCpuMs, processCpuMs, processRunQueueWaitMs, selfCpuMs } from '../lib/machine';
import type { DriverConfig, DriverResult } from './driver';
import { Histogram } from './histogram';
import type { TransportKind } from './transports';
import type { LoadgenMessage } from './worker';
import type { StreamOptions } from './stream-driver';
import { isStreamWorkload, type KeyOptions } from './workloads';

export { WORKLOADS, getWorkload, getWorkloadInfo, KEY_OPTIONS_DEFAULT } from './workloads';
export type { KeyOptions, KeyOrder, Workload, WorkloadInfo } from './workloads';
export { STREAM_DEFAULTS, type StreamOptions } from './stream-driver';
export { TRANSPORTS, type TransportKind } from './transports';

export interface LoadOptions {
  /**
   * http://host:port or host:port; several (cluster members): HTTP/2 connection i goes to
   * endpoint i mod n, and client j uses connection j mod conns, so client j talks to
   * endpoint j mod n when conns is a multiple of n. Streaming workloads use the first.
   */
  endpoint: string | string[];
  workload: string;
  keys: KeyOptions;
  /** worker_threads generating load (default 1). */
  workers?: number;
  /** Concurrent calls in flight, over all workers (default 64). */
  clients?: number;
  /** HTTP/2 connections, over all workers (default 4; at least one per worker). */
  conns?: number;
  /** How calls go on the wire (default 'h2'; see transports.ts). */
  transport?: TransportKind;
  /** Warm-up before the measured window (default 1000; duration runs only). */
  warmupMs?: number;
  /** Measured window (default 10 000). */
  durationMs?: number;
  /** Fixed number of calls instead of a duration (0: duration run). */
  count?: number;
  /** Account this process's CPU use during the measured window (e.g. the server's). */
  serverPid?: number;
  /** Or several (cluster members): serverCpuCores is their sum, serverCpuCoresEach per pid. */
  serverPids?: number[];
  /** Options of the streaming workloads (watch-fanout, lease-keepalive). */
  stream?: StreamOptions;
}

export const LOAD_DEFAULTS = {
  workers: 1,
  clients: 64,
  conns: 4,
  transport: 'h2' as TransportKind,
  warmupMs: 1_000,
  durationMs: 10_000,
  count: 0,
};

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  workload: string;
  workers: number;
  clients: number;
  conns: number;
  transport: TransportKind;
  /** Successful calls in the measured window. */
  ops: number;
  opsPerSec: number;
  /** Mean measured window over workers. */
  windowMs: number;
  latencyMs: LatencySummary;
  /** Failed calls in the measured window. */
  errors: number;
  /** Failed calls in the whole run (warm-up and drain included). */
  errorsTotal: number;
  badResponses: number;
  errorsByCode: Record<string, number>;
  errorSamples: string[];
  callsStarted: number;
  unfinished: number;
  verified: number;
  /** CPU used during the measured window, in cores (1.0 = one core busy). */
  loadgenCpuCores: number;
  serverCpuCores: number | null;
  /** Per server pid when LoadOptions.serverPids was given (same order). */
  serverCpuCoresEach?: number[];
  /** Per server pid: its threads' time runnable but waiting for a CPU, per second of the window (Linux). */
  serverRunQueueWaitEach?: number[];
  /** Busy CPU of the whole machine during the window, in cores; minus the two above = other load. */
  machineCpuCores: number;
  /** Workload-specific counters, summed over workers (streaming workloads). */
  extra?: Record<string, number>;
}

interface CpuWindow {
  selfStart: number;
  selfEnd: number;
  srvStart: number;
  srvEnd: number;
  eachStart: number[];
  eachEnd: number[];
  waitStart: number[];
  waitEnd: number[];
  machStart: number;
  machEnd: number;
  wallStart: bigint;
  wallEnd: bigint;
}

function share(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

function targetOf(endpoint: string): string {
  return endpoint.replace(/^https?:\/\//, '').replace(/\/$/, '');
}

interface Spawned {
  worker: Worker;
  ready: Promise<void>;
  result: Promise<DriverResult>;
}

function spawnWorker(cfg: DriverConfig, onMeasure: (edge: 'start' | 'end') => void): Spawned {
  const worker = new Worker(path.join(__dirname, 'worker.js'), { workerData: cfg });
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  let resultResolve!: (r: DriverResult) => void;
  let resultReject!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  const result = new Promise<DriverResult>((res, rej) => {
    resultResolve = res;
    resultReject = rej;
  });
  result.catch(() => undefined); // a failure before 'ready' surfaces through `ready`
  const fail = (e: Error): void => {
    readyReject(e);
    resultReject(e);
  };
  let settled = false;
  worker.on('message', (m: LoadgenMessage) => {
    switch (m.type) {
      case 'ready':
        readyResolve();
        break;
      case 'measure':
        onMeasure(m.edge);
        break;
      case 'result':
        settled = true;
        resultResolve(m.result);
        break;
      case 'error':
        settled = true;
        fail(new Error(`loadgen worker: ${m.message}`));
        break;
    }
  });
  worker.on('error', (e) => fail(e));
  worker.on('exit', (code) => {
    if (!settled) fail(new Error(`loadgen worker exited with code ${code} before reporting`));
  });
  return { worker, ready, result };
}

/** Run one load against one server and return the merged result. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  // A streaming workload runs in one thread (its writer and watchers share one clock and one event loop).
  const workers = isStreamWorkload(opts.workload) ? 1 : opts.workers ?? LOAD_DEFAULTS.workers;
  const clients = opts.clients ?? LOAD_DEFAULTS.clients;
  const conns = Math.max(opts.conns ?? LOAD_DEFAULTS.conns, workers);
  const count = opts.count ?? LOAD_DEFAULTS.count;
  const transport = opts.transport ?? LOAD_DEFAULTS.transport;
  const durationMs = opts.durationMs ?? LOAD_DEFAULTS.durationMs;
  const warmupMs = opts.warmupMs ?? LOAD_DEFAULTS.warmupMs;
  if (workers < 1 || clients < workers) throw new Error(`loadgen: need workers >= 1 and clients >= workers`);

  // CPU accounting over the window from the first 'start' to the last 'end' edge.
  let started = 0;
  let ended = 0;
  const cpu: CpuWindow = {
    selfStart: 0, selfEnd: 0, srvStart: NaN, srvEnd: NaN, eachStart: [], eachEnd: [], waitStart: [], waitEnd: [], machStart: NaN, machEnd: NaN, wallStart: 0n, wallEnd: 0n,
  };
  const pids = opts.serverPids ?? (opts.serverPid !== undefined ? [opts.serverPid] : []);
  const srvSample = (): { sum: number; each: number[] } => {
    const each = pids.map(processCpuMs);
    return { sum: pids.length === 0 ? NaN : each.reduce((a, b) => a + b, 0), each };
  };
  const onMeasure = (edge: 'start' | 'end'): void => {
    if (edge === 'start' && ++started === 1) {
      cpu.wallStart = process.hrtime.bigint();
      cpu.selfStart = selfCpuMs();
      cpu.machStart = machineCpuMs().busyMs;
      ({ sum: cpu.srvStart, each: cpu.eachStart } = srvSample());
      cpu.waitStart = pids.map(processRunQueueWaitMs);
    } else if (edge === 'end' && ++ended === workers) {
      cpu.wallEnd = process.hrtime.bigint();
      cpu.selfEnd = selfCpuMs();
      cpu.machEnd = machineCpuMs().busyMs;
      ({ sum: cpu.srvEnd, each: cpu.eachEnd } = srvSample());
      cpu.waitEnd = pids.map(processRunQueueWaitMs);
    }
  };

  const endpoints = (Array.isArray(opts.endpoint) ? opts.endpoint : [opts.endpoint]).map(targetOf);
  if (endpoints.length === 0) throw new Error('loadgen: no endpoint');
  const spawned: Spawned[] = [];
  try {
    let connOffset = 0;
    for (let w = 0; w < workers; w++) {
      // Rotate so that global connection index k still maps to endpoints[k % n] across workers.
      const rot = connOffset % endpoints.length;
      const targets = [...endpoints.slice(rot), ...endpoints.slice(0, rot)];
      connOffset += share(conns, workers, w);
      const cfg: DriverConfig = {
        target: targets[0],
        targets,
        workload: opts.workload,
        keys: opts.keys,
        clients: share(clients, workers, w),
        conns: share(conns, workers, w),
        transport,
        warmupMs: count > 0 ? 0 : warmupMs,
        durationMs,
        count: count > 0 ? share(count, workers, w) : 0,
        keyStart: w,
        keyStride: workers,
        drainTimeoutMs: 10_000,
        connectTimeoutMs: 10_000,
        stream: opts.stream,
      };
      spawned.push(spawnWorker(cfg, onMeasure));
    }
    await Promise.all(spawned.map((s) => s.ready));
    for (const s of spawned) s.worker.postMessage('go');
    const results = await Promise.all(spawned.map((s) => s.result));
    return merge(opts.workload, { workers, clients, conns, transport }, results, cpu);
  } finally {
    await Promise.all(spawned.map((s) => s.worker.terminate()));
  }
}

function merge(
  workload: string,
  shape: { workers: number; clients: number; conns: number; transport: TransportKind },
  results: DriverResult[],
  cpu: CpuWindow,
): LoadResult {
  const hist = new Histogram();
  const errorsByCode: Record<string, number> = {};
  const errorSamples: string[] = [];
  let ops = 0;
  let opsPerSec = 0;
  let windowMs = 0;
  let extra: Record<string, number> | undefined;
  const sum = { errors: 0, errorsTotal: 0, badResponses: 0, callsStarted: 0, unfinished: 0, verified: 0 };
  for (const r of results) {
    hist.add(r.hist);
    ops += r.ops;
    if (r.windowMs > 0) opsPerSec += (r.ops * 1000) / r.windowMs;
    windowMs += r.windowMs / results.length;
    sum.errors += r.errors;
    sum.errorsTotal += r.errorsTotal;
    sum.badResponses += r.badResponses;
    sum.callsStarted += r.callsStarted;
    sum.unfinished += r.unfinished;
    sum.verified += r.verified;
    for (const [code, n] of Object.entries(r.errorsByCode)) errorsByCode[code] = (errorsByCode[code] ?? 0) + n;
    for (const s of r.errorSamples) if (errorSamples.length < 10) errorSamples.push(s);
    if (r.extra !== undefined) {
      extra ??= {};
      for (const [k, v] of Object.entries(r.extra)) extra[k] = (extra[k] ?? 0) + v;
    }
  }
  const ms = (us: number): number => Math.round(us) / 1000;
  const wallMs = Number(cpu.wallEnd - cpu.wallStart) / 1e6;
  const srvMs = cpu.srvEnd - cpu.srvStart;
  return {
    workload,
    ...shape,
    ops,
    opsPerSec: Math.round(opsPerSec),
    windowMs: Math.round(windowMs),
    latencyMs: {
      p50: ms(hist.quantileUs(0.5)),
      p90: ms(hist.quantileUs(0.9)),
      p99: ms(hist.quantileUs(0.99)),
      max: ms(hist.maxUs),
      mean: ms(hist.meanUs()),
    },
    ...sum,
    errorsByCode,
    errorSamples,
    loadgenCpuCores: wallMs > 0 ? round2((cpu.selfEnd - cpu.selfStart) / wallMs) : NaN,
    serverCpuCores: Number.isFinite(srvMs) && wallMs > 0 ? round2(srvMs / wallMs) : null,
    ...(cpu.eachStart.length > 1 && wallMs > 0 ? { serverCpuCoresEach: cpu.eachStart.map((s0, i) => round2((cpu.eachEnd[i] - s0) / wallMs)) } : {}),
    ...(cpu.waitStart.length > 0 && wallMs > 0 && cpu.waitStart.every(Number.isFinite)
      ? { serverRunQueueWaitEach: cpu.waitStart.map((w0, i) => round2((cpu.waitEnd[i] - w0) / wallMs)) }
      : {}),
    machineCpuCores: wallMs > 0 ? round2((cpu.machEnd - cpu.machStart) / wallMs) : NaN,
    ...(extra !== undefined ? { extra } : {}),
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
