/**
 * check perf and make-mirror, as etcdctl 3.4 runs them (etcdctl/ctlv3/command/check.go,
 * make_mirror_command.go): same workloads, same PASS / FAIL lines and thresholds, same
 * mirroring (a base copy, then the watch's events as one transaction per revision).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { Client, op, type KeyRange, type Operation } from '../client';
import { b, s, type Command, type Ctx } from './cmd';
import { goQuote } from './gofmt';
import { CliExit, Exit, errorText, exitWithError, out } from './runtime';

interface PerfModel {
  /** Writes per second the check asks for. */
  limit: number;
  clients: number;
  durationS: number;
}

const PERF_MODELS: Record<string, PerfModel> = {
  s: { limit: 150, clients: 50, durationS: 60 },
  m: { limit: 1000, clients: 200, durationS: 60 },
  l: { limit: 8000, clients: 500, durationS: 60 },
  xl: { limit: 15000, clients: 1000, durationS: 60 },
};
const PERF_ALIAS: Record<string, string> = { s: 's', small: 's', m: 'm', medium: 'm', l: 'l', large: 'l', xl: 'xl', xLarge: 'xl' };
const KEY_BYTES = 256;
const VALUE_BYTES = 1024;

/** Go's %f. */
const f6 = (x: number): string => x.toFixed(6);

/** binary.PutVarint of a random non-negative int63 into a zeroed key of KEY_BYTES. */
function randomKey(prefix: Buffer): Buffer {
  const k = Buffer.alloc(KEY_BYTES);
  const v = BigInt.asUintN(63, (BigInt(Math.floor(Math.random() * 2 ** 31)) << 32n) | BigInt(Math.floor(Math.random() * 2 ** 32)));
  let ux = v << 1n; // zig-zag of a non-negative value
  let i = 0;
  while (ux >= 0x80n) {
    k[i++] = Number(ux & 0x7fn) | 0x80;
    ux >>= 7n;
  }
  k[i] = Number(ux);
  return Buffer.concat([prefix, k]);
}

/** etcdctl's compact() of check perf / datascale. */
async function compactAll(c: Client, rev: number): Promise<void> {
  out(`Compacting with revision ${rev}\n`);
  try {
    await c.compact(rev, { physical: true, timeoutMs: 30_000 });
  } catch (e) {
    exitWithError(Exit.Error, errorText(e));
  }
  out(`Compacted with revision ${rev}\n`);
}

/** etcdctl's defrag() of check perf / datascale, for every endpoint. */
async function defragAll(ctx: Ctx): Promise<void> {
  for (const ep of ctx.endpoints) {
    out(`Defragmenting ${goQuote(ep)}\n`);
    try {
      await ctx.clientFor(ep).maintenance.defragment({ timeoutMs: 30_000 });
    } catch (e) {
      exitWithError(Exit.Error, errorText(e));
    }
    out(`Defragmented ${goQuote(ep)}\n`);
  }
}

/** A progress bar (seconds of check perf, puts of check datascale) on stdout, only on a terminal. */
function secondsBar(total: number): { tick: (n: number) => void; done: () => void } {
  const on = process.stdout.isTTY === true;
  const draw = (n: number): void => {
    if (!on) return;
    const w = 40;
    process.stdout.write(`\r${String(n).padStart(String(total).length)} / ${total} Bom ${'!'.repeat(Math.round((n / total) * w)).padEnd(w, ' ')} ${((n / total) * 100).toFixed(2)}%`);
  };
  return { tick: draw, done: () => on && process.stdout.write('\n') };
}

async function checkPerf(ctx: Ctx, f: { load: string; prefix: string; autoCompact: boolean; autoDefrag: boolean }): Promise<void> {
  const model = PERF_ALIAS[f.load];
  if (model === undefined) exitWithError(Exit.BadFeature, `unknown load option ${f.load}`);
  const cfg = { ...PERF_MODELS[model] };
  // For tests only: a shorter run than etcdctl's fixed minute.
  const override = Number(process.env.CAIRNCTL_CHECK_PERF_SECONDS ?? '');
  if (Number.isInteger(override) && override > 0) cfg.durationS = override;
  // As etcdctl: one client (connection) per concurrent writer.
  const clients: Client[] = [ctx.client(), ...Array.from({ length: cfg.clients - 1 }, () => ctx.newClient())];
  const first = clients[0];
  const prefix = Buffer.from(f.prefix, 'utf8');
  const range: KeyRange = { key: prefix, prefix: true };
  try {
    const r = await first.get({ ...range, limit: 1 });
    if (r.kvs.length > 0) exitWithError(Exit.InvalidInput, `prefix ${goQuote(f.prefix)} has keys. Delete with etcdctl del --prefix ${f.prefix} first`);
  } catch (e) {
    if (e instanceof CliExit) throw e;
    exitWithError(Exit.Error, errorText(e));
  }
  const value = Buffer.alloc(VALUE_BYTES);
  const lats: number[] = [];
  const errors = new Map<string, number>();
  const startMs = Date.now();
  const endMs = startMs + cfg.durationS * 1000;
  let stop = false;
  const onInt = (): void => {
    stop = true;
  };
  process.once('SIGINT', onInt);
  const bar = secondsBar(cfg.durationS);
  const barTimer = setInterval(() => bar.tick(Math.min(cfg.durationS, Math.round((Date.now() - startMs) / 1000))), 1000);
  // One request every 1/limit seconds (a token bucket with a burst of 1), taken by whichever client is free.
  const intervalMs = 1000 / cfg.limit;
  let next = startMs;
  const worker = async (c: Client): Promise<void> => {
    for (;;) {
      const now = Date.now();
      if (stop || now >= endMs) return;
      const at = next;
      next = Math.max(next + intervalMs, now);
      if (at > now) await new Promise((r) => setTimeout(r, at - now));
      if (stop || Date.now() >= endMs) return;
      const st = process.hrtime.bigint();
      try {
        await c.put(randomKey(prefix), value);
      } catch (e) {
        const m = errorText(e);
        errors.set(m, (errors.get(m) ?? 0) + 1);
      }
      lats.push(Number(process.hrtime.bigint() - st) / 1e9);
    }
  };
  await Promise.all(clients.map(worker));
  const totalS = (Date.now() - startMs) / 1000;
  clearInterval(barTimer);
  bar.tick(cfg.durationS);
  bar.done();
  process.off('SIGINT', onInt);

  // Clean up (and compact / defragment) before judging, as etcdctl does.
  try {
    const d = await first.delete({ ...range }, { timeoutMs: 30_000 });
    if (f.autoCompact) await compactAll(first, d.header.revision);
  } catch (e) {
    if (e instanceof CliExit) throw e;
    out(`FAIL: Cleanup failed during key deletion: ERROR(${errorText(e)})\n`);
  }
  if (f.autoDefrag) await defragAll(ctx);

  const ok = judge(lats, totalS, errors, cfg.limit);
  if (ok) out('PASS\n');
  else {
    out('FAIL\n');
    process.exit(Exit.Error);
  }
}

/** etcdctl's verdict: no errors, >90% of the asked throughput, slowest <= 500ms, stddev <= 100ms. */
function judge(lats: number[], totalS: number, errors: Map<string, number>, limit: number): boolean {
  let ok = true;
  if (errors.size !== 0) {
    out('FAIL: too many errors\n');
    for (const [k, v] of errors) out(`FAIL: ERROR(${k}) -> ${v}\n`);
    ok = false;
  }
  const rps = lats.length / totalS;
  if (rps / limit <= 0.9) {
    out(`FAIL: Throughput too low: ${Math.floor(rps) + 1} writes/s\n`);
    ok = false;
  } else out(`PASS: Throughput is ${Math.floor(rps) + 1} writes/s\n`);
  const slowest = lats.reduce((a, x) => Math.max(a, x), 0);
  const mean = lats.reduce((a, x) => a + x, 0) / Math.max(1, lats.length);
  const stddev = Math.sqrt(lats.reduce((a, x) => a + (x - mean) ** 2, 0) / Math.max(1, lats.length));
  if (slowest > 0.5) {
    out(`Slowest request took too long: ${f6(slowest)}s\n`);
    ok = false;
  } else out(`PASS: Slowest request took ${f6(slowest)}s\n`);
  if (stddev > 0.1) {
    out(`Stddev too high: ${f6(stddev)}s\n`);
    ok = false;
  } else out(`PASS: Stddev is ${f6(stddev)}s\n`);
  return ok;
}

// ---------------------------------------------------------------------------------
// check datascale

const DATASCALE_MODELS: Record<string, { limit: number; kvSize: number; clients: number }> = {
  s: { limit: 10_000, kvSize: 1024, clients: 50 },
  m: { limit: 100_000, kvSize: 1024, clients: 200 },
  l: { limit: 1_000_000, kvSize: 1024, clients: 500 },
  xl: { limit: 3_000_000, kvSize: 1024, clients: 1000 },
};
const RESIDENT_MEMORY = 'process_resident_memory_bytes';

/** The member's resident memory from its /metrics, or 0 after printing why not (etcdctl's endpointMemoryMetrics). */
async function residentMemory(endpoint: string, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | null): Promise<number> {
  const base = /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
  const url = `${base}/metrics`;
  let body: string;
  try {
    body = await new Promise<string>((resolve, reject) => {
      const get = url.startsWith('https://') ? https.get : http.get;
      const req = get(url, url.startsWith('https://') && tls ? { ca: tls.ca, cert: tls.cert, key: tls.key } : {}, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (data += d));
        res.on('end', () => resolve(data));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
  } catch (e) {
    out(`fetch error: Get ${goQuote(url)}: ${e instanceof Error ? e.message : String(e)}\n`);
    return 0;
  }
  const line = body.split('\n').find((l) => l.startsWith(RESIDENT_MEMORY));
  const value = line === undefined ? '' : line.slice(RESIDENT_MEMORY.length).trim();
  if (value === '') {
    out(`could not find: ${RESIDENT_MEMORY}\n`);
    return 0;
  }
  const n = Number(value);
  if (!Number.isFinite(n)) {
    out(`parse error: strconv.ParseFloat: parsing ${goQuote(value)}: invalid syntax\n`);
    return 0;
  }
  return n;
}

async function checkDatascale(ctx: Ctx, f: { load: string; prefix: string; autoCompact: boolean; autoDefrag: boolean }, tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | null): Promise<void> {
  const model = PERF_ALIAS[f.load];
  if (model === undefined) exitWithError(Exit.BadFeature, `unknown load option ${f.load}`);
  const cfg = DATASCALE_MODELS[model];
  const clients: Client[] = [ctx.client(), ...Array.from({ length: cfg.clients - 1 }, () => ctx.newClient())];
  const first = clients[0];
  const prefix = Buffer.from(f.prefix, 'utf8');
  try {
    const r = await first.get({ key: prefix, prefix: true, limit: 1 });
    if (r.kvs.length > 0) exitWithError(Exit.InvalidInput, `prefix ${goQuote(f.prefix)} has keys. Delete with etcdctl del --prefix ${f.prefix} first`);
  } catch (e) {
    if (e instanceof CliExit) throw e;
    exitWithError(Exit.Error, errorText(e));
  }
  const before = await residentMemory(ctx.endpoints[0], tls);
  if (before === 0) {
    out(`FAIL: Could not read ${RESIDENT_MEMORY} before the put operations.\n`);
    process.exit(Exit.Error);
  }
  out(`Start data scale check for work load [${cfg.limit} key-value pairs, ${cfg.kvSize} bytes per key-value, ${cfg.clients} concurrent clients].\n`);
  // Keys of 512 bytes (a random varint, zero-padded) and values of 512 zero bytes.
  const value = Buffer.alloc(512);
  const errors = new Map<string, number>();
  let issued = 0;
  let done = 0;
  const bar = secondsBar(cfg.limit);
  const barTimer = setInterval(() => bar.tick(done), 200);
  await Promise.all(
    clients.map(async (c) => {
      while (issued < cfg.limit) {
        issued++;
        try {
          await c.put(Buffer.concat([prefix, randomKey(Buffer.alloc(0)), Buffer.alloc(256)]), value);
        } catch (e) {
          const m = errorText(e);
          errors.set(m, (errors.get(m) ?? 0) + 1);
        }
        done++;
      }
    }),
  );
  clearInterval(barTimer);
  bar.tick(done);
  bar.done();
  const after = await residentMemory(ctx.endpoints[0], tls);
  if (after === 0) {
    out(`FAIL: Could not read ${RESIDENT_MEMORY} after the put operations.\n`);
    process.exit(Exit.Error);
  }
  const d = await first.delete({ key: prefix, prefix: true }).catch((e: unknown) => exitWithError(Exit.Error, errorText(e)));
  if (f.autoCompact) await compactAll(first, d.header.revision);
  if (f.autoDefrag) await defragAll(ctx);
  if (errors.size !== 0) {
    out('FAIL: too many errors\n');
    for (const [k, v] of errors) out(`FAIL: ERROR(${k}) -> ${v}\n`);
    process.exit(Exit.Error);
  }
  out(`PASS: Approximate system memory used : ${((after - before) / (1024 * 1024)).toFixed(2)} MB.\n`);
}

export const CHECK_COMMAND: Command = {
  name: 'check',
  short: 'commands for checking properties of the etcd cluster',
  usage: 'check <subcommand>',
  flags: [],
  sub: [
    {
      name: 'datascale',
      short: 'Check the memory usage of holding data for different workloads on a given server endpoint.',
      usage: 'check datascale [options]',
      long: 'If no endpoint is provided, localhost will be used. If multiple endpoints are provided, first endpoint will be used.',
      flags: [
        b('auto-compact', 'Compact storage with last revision after test is finished.'),
        b('auto-defrag', 'Defragment storage after test is finished.'),
        s('load', 's', "The datascale check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)"),
        s('prefix', '/etcdctl-check-datascale/', "The prefix for writing the datascale check's keys."),
      ],
      run: (ctx, _args, f) => checkDatascale(ctx, { load: f.str('load'), prefix: f.str('prefix'), autoCompact: f.bool('auto-compact'), autoDefrag: f.bool('auto-defrag') }, ctx.tlsFiles ?? null),
    },
    {
      name: 'perf',
      short: 'Check the performance of the etcd cluster',
      usage: 'check perf [options]',
      flags: [
        b('auto-compact', 'Compact storage with last revision after test is finished.'),
        b('auto-defrag', 'Defragment storage after test is finished.'),
        s('load', 's', "The performance check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)"),
        s('prefix', '/etcdctl-check-perf/', "The prefix for writing the performance check's keys."),
      ],
      run: (ctx, _args, f) => checkPerf(ctx, { load: f.str('load'), prefix: f.str('prefix'), autoCompact: f.bool('auto-compact'), autoDefrag: f.bool('auto-defrag') }),
    },
  ],
};

// ---------------------------------------------------------------------------------
// make-mirror

/** Keys read per request of the base copy (etcd's mirror.batchLimit). */
const MIRROR_BATCH = 1000;

async function makeMirror(ctx: Ctx, args: string[], f: { prefix: string; destPrefix: string; noDestPrefix: boolean; cert: string; key: string; cacert: string; insecure: boolean }): Promise<void> {
  if (args.length !== 1) exitWithError(Exit.BadArgs, 'make-mirror takes one destination argument');
  const anyTls = f.cert !== '' || f.key !== '' || f.cacert !== '';
  const read = (p: string): Buffer | undefined => (p === '' ? undefined : fs.readFileSync(p));
  const dest = new Client({
    endpoints: [args[0]],
    dialTimeoutMs: ctx.dialTimeoutMs,
    tls: anyTls || !f.insecure ? { ca: read(f.cacert), cert: read(f.cert), key: read(f.key) } : undefined,
  });
  const src = ctx.client();
  let total = 0;
  const intervalMs = Number(process.env.CAIRNCTL_MIRROR_REPORT_MS ?? '') || 30_000; // etcdctl: every 30 s; tests shorten it
  const timer = setInterval(() => out(`${total}\n`), intervalMs);
  try {
    // The base copy at one revision, then every change after it.
    const first = await src.get({ key: f.prefix === '' ? '\x00' : f.prefix, ...(f.prefix === '' ? { fromKey: true } : { prefix: true }), limit: 1 });
    const rev = first.header.revision;
    if (f.noDestPrefix && f.destPrefix.length > 0) exitWithError(Exit.BadArgs, '`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one');
    const destPrefix = !f.noDestPrefix && f.destPrefix.length === 0 ? f.prefix : f.destPrefix;
    const rename = (k: Buffer): Buffer => {
      const s = k.toString('latin1');
      const p = Buffer.from(f.prefix, 'utf8').toString('latin1');
      const i = s.indexOf(p);
      return i < 0 ? k : Buffer.from(s.slice(0, i) + Buffer.from(destPrefix, 'utf8').toString('latin1') + s.slice(i + p.length), 'latin1');
    };
    let from: Buffer = Buffer.from(f.prefix === '' ? '\x00' : f.prefix, 'utf8');
    const end = f.prefix === '' ? null : f.prefix;
    for (;;) {
      const page = await src.get(end === null ? { key: from, fromKey: true, revision: rev, limit: MIRROR_BATCH } : { key: from, rangeEnd: prefixEndOf(end), revision: rev, limit: MIRROR_BATCH });
      for (const kv of page.kvs) {
        await dest.put(rename(kv.key), kv.value);
        total++;
      }
      if (!page.more || page.kvs.length === 0) break;
      from = Buffer.concat([page.kvs[page.kvs.length - 1].key, Buffer.from([0])]);
    }
    const w = src.watch({ key: f.prefix === '' ? '\x00' : f.prefix, ...(f.prefix === '' ? { fromKey: true } : { prefix: true }), startRevision: rev + 1 });
    for await (const batch of w) {
      let lastRev = 0;
      let ops: Operation[] = [];
      const flush = async (): Promise<void> => {
        if (ops.length > 0) await dest.txn().then(...ops).commit();
        ops = [];
      };
      for (const ev of batch.events) {
        if (lastRev !== 0 && ev.kv.modRevision > lastRev) await flush();
        lastRev = ev.kv.modRevision;
        ops.push(ev.type === 'put' ? op.put(rename(ev.kv.key), ev.kv.value) : op.delete(rename(ev.kv.key)));
        total++;
      }
      await flush();
    }
    exitWithError(Exit.Error, 'watch is canceled by the server');
  } catch (e) {
    if (e instanceof CliExit) throw e;
    exitWithError(Exit.Error, errorText(e));
  } finally {
    clearInterval(timer);
    dest.close();
  }
}

function prefixEndOf(p: string): Buffer {
  const end = Buffer.from(p, 'utf8');
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export const MAKE_MIRROR: Command = {
  name: 'make-mirror',
  short: 'Makes a mirror at the destination etcd cluster',
  usage: 'make-mirror [options] <destination>',
  flags: [
    s('dest-cacert', '', 'Verify certificates of TLS enabled secure servers using this CA bundle'),
    s('dest-cert', '', 'Identify secure client using this TLS certificate file for the destination cluster'),
    { name: 'dest-insecure-transport', kind: 'bool', default: 'true', usage: 'Disable transport security for client connections' },
    s('dest-key', '', 'Identify secure client using this TLS key file'),
    s('dest-prefix', '', 'destination prefix to mirror a prefix to a different prefix in the destination cluster'),
    b('no-dest-prefix', 'mirror key-values to the root of the destination cluster'),
    s('prefix', '', 'Key-value prefix to mirror'),
  ],
  run: (ctx, args, f) =>
    makeMirror(ctx, args, {
      prefix: f.str('prefix'),
      destPrefix: f.str('dest-prefix'),
      noDestPrefix: f.bool('no-dest-prefix'),
      cert: f.str('dest-cert'),
      key: f.str('dest-key'),
      cacert: f.str('dest-cacert'),
      insecure: f.bool('dest-insecure-transport'),
    }),
};
