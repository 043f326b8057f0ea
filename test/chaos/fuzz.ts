/**
 * A gRPC fuzzer for a running cairn member: every method of every service in
 * src/gen/proto-schema.json gets, from a seeded PRNG,
 *   - random but well-formed requests with extreme values (int64 limits, negative and huge
 *     numbers, empty / NUL / 0xff / megabyte keys and values, out-of-range enums, long
 *     repeated fields, deep nesting),
 *   - those requests mutated on the wire (bit flips, truncation, garbage appended, bogus
 *     tags and lengths) and plain random bytes,
 *   - on streaming methods, several messages and then a half-close or a cancel mid-way,
 *   - at the HTTP/2 level, gRPC frames whose length prefix lies (truncated, oversized, a
 *     compressed flag without an encoding).
 * Each call must end with a proper gRPC status before its deadline (methods that may wait
 * by design -- Lock, Campaign, Observe, Watch, LeaseKeepAlive, Snapshot -- may run into
 * the deadline), the member must stay up, and a handler must never fail with an internal
 * error ("cairn: internal error: ..." = an exception nobody mapped to etcd's error).
 *
 * Requests that would take the cluster down on purpose (which etcd allows too) are kept
 * out of the structured generator: MemberAdd is always a learner, the user "root" is never
 * created (so AuthEnable cannot succeed), no real member / lease / revision is aimed at.
 */
import * as grpc from '@grpc/grpc-js';
import Long from 'long';
import * as http2 from 'node:http2';
import * as protobuf from 'protobufjs';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from './rng';

const root = protobuf.Root.fromJSON(JSON.parse(fs.readFileSync(path.join(__dirname, '../../src/gen/proto-schema.json'), 'utf8')) as protobuf.INamespace);
root.resolveAll();

export interface FuzzMethod {
  service: string;
  name: string;
  path: string;
  req: protobuf.Type;
  res: protobuf.Type;
  requestStream: boolean;
  responseStream: boolean;
}

/** Every method of every service in the schema. */
export function allMethods(): FuzzMethod[] {
  const out: FuzzMethod[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Service) {
        for (const m of o.methodsArray) {
          m.resolve();
          out.push({
            service: o.fullName.slice(1),
            name: m.name,
            path: `/${o.fullName.slice(1)}/${m.name}`,
            req: m.resolvedRequestType!,
            res: m.resolvedResponseType!,
            requestStream: m.requestStream === true,
            responseStream: m.responseStream === true,
          });
        }
      } else if (o instanceof protobuf.Namespace) walk(o);
    }
  };
  walk(root);
  return out;
}

/** Methods allowed to wait (for a lock, an election, events, keep-alives, a snapshot) until the deadline. */
const MAY_WAIT = new Set(['Lock', 'Campaign', 'Observe', 'Watch', 'LeaseKeepAlive', 'Snapshot']);
/** Methods that only get structured requests: their random or mutated forms could, rarely, change the cluster for good. */
const STRUCTURED_ONLY = new Set(['MemberAdd', 'MemberRemove', 'MemberUpdate', 'MemberPromote', 'MoveLeader', 'UserAdd', 'AuthEnable']);

// ---------------------------------------------------------------------------------
// Values

const I64 = ['0', '1', '-1', '9223372036854775807', '-9223372036854775808', '4294967296', '-4294967296', '2147483648'];
const U64 = ['0', '1', '18446744073709551615', '9223372036854775808', '4294967295'];
const I32 = [0, 1, -1, 2147483647, -2147483648, 65536];

function bytesValue(rng: Rng, big: boolean): Buffer {
  const r = rng.next();
  if (r < 0.15) return Buffer.alloc(0);
  if (r < 0.25) return Buffer.from([0]);
  if (r < 0.35) return Buffer.from([0xff, 0xff]);
  if (r < 0.5) return Buffer.from(`fuzz/${rng.int(0, 50)}`);
  if (r < 0.6) return Buffer.from(`fuzz/`);
  if (big && r < 0.63) return Buffer.alloc(rng.pick([1024 * 1024, 1.5 * 1024 * 1024, 1.5 * 1024 * 1024 + 1, 3 * 1024 * 1024]), 0x61);
  if (r < 0.7) return Buffer.alloc(rng.int(1000, 70_000), rng.int(0, 255));
  const b = Buffer.alloc(rng.int(1, 40));
  for (let i = 0; i < b.length; i++) b[i] = rng.int(0, 255);
  return b;
}

function stringValue(rng: Rng, field: string): string {
  const r = rng.next();
  if (/name|user/i.test(field) && r < 0.3) return `fuzz-${rng.int(0, 9)}`; // never "root"
  if (/url/i.test(field) && r < 0.5) return rng.pick(['http://127.0.0.1:1', 'http://', '://x', 'unix:///x', 'http://[::1', 'https://256.1.1.1:99999', '']);
  if (r < 0.2) return '';
  if (r < 0.3) return '\u0000';
  if (r < 0.4) return '\ud800'; // a lone surrogate
  if (r < 0.45) return 'x'.repeat(rng.int(1000, 100_000));
  const s = Buffer.alloc(rng.int(1, 20));
  for (let i = 0; i < s.length; i++) s[i] = rng.int(32, 126);
  const out = s.toString('latin1');
  return out === 'root' ? 'toor' : out;
}

function scalar(rng: Rng, type: string, field: string, big: boolean): unknown {
  switch (type) {
    case 'int64':
    case 'sint64':
    case 'sfixed64':
      return Long.fromString(rng.chance(0.7) ? rng.pick(I64) : String(rng.int(-1000, 100_000)), false);
    case 'uint64':
    case 'fixed64':
      return Long.fromString(rng.chance(0.7) ? rng.pick(U64) : String(rng.int(0, 100_000)), true);
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return rng.chance(0.7) ? rng.pick(I32) : rng.int(-100, 100);
    case 'uint32':
    case 'fixed32':
      return rng.chance(0.5) ? rng.pick([0, 1, 4294967295]) : rng.int(0, 1000);
    case 'bool':
      return rng.chance(0.5);
    case 'string':
      return stringValue(rng, field);
    case 'bytes':
      return bytesValue(rng, big);
    case 'double':
    case 'float':
      return rng.pick([0, -1, 1e308, Number.NaN]);
    default:
      throw new Error(`no generator for ${type}`);
  }
}

/** A random message of `type` (a plain object for `type.create`), depth-limited. */
export function randomMessage(type: protobuf.Type, rng: Rng, depth = 0, big = true): Record<string, unknown> {
  const obj: Record<string, unknown> = {};
  const oneofFields = new Set<string>();
  for (const o of type.oneofsArray) {
    for (const f of o.fieldsArray) oneofFields.add(f.name);
    if (rng.chance(0.8)) {
      const f = rng.pick(o.fieldsArray);
      obj[f.name] = fieldValue(f, rng, depth, big);
    }
  }
  for (const f of type.fieldsArray) {
    if (oneofFields.has(f.name) || rng.chance(0.35)) continue;
    if (f.repeated) {
      const n = rng.chance(0.1) ? rng.int(100, 300) : rng.int(0, 3);
      obj[f.name] = Array.from({ length: n }, () => fieldValue(f, rng, depth + 1, big && n < 5));
    } else obj[f.name] = fieldValue(f, rng, depth, big);
  }
  return obj;
}

function fieldValue(f: protobuf.Field, rng: Rng, depth: number, big: boolean): unknown {
  f.resolve();
  if (f.resolvedType instanceof protobuf.Type) return depth > 3 ? {} : randomMessage(f.resolvedType, rng, depth + 1, big);
  if (f.resolvedType instanceof protobuf.Enum) {
    const vals = Object.values(f.resolvedType.values);
    return rng.chance(0.8) ? rng.pick(vals) : rng.pick([-1, 99, 2147483647]);
  }
  return scalar(rng, f.type, f.name, big);
}

/** Keep structured requests from doing what would end the run on purpose. */
function tame(m: FuzzMethod, obj: Record<string, unknown>): void {
  if (m.name === 'MemberAdd') obj.isLearner = true;
  if (m.name === 'UserAdd' && (obj.name === 'root' || obj.name === undefined)) obj.name = 'fuzz-user';
}

export function encode(type: protobuf.Type, obj: Record<string, unknown>): Buffer {
  return Buffer.from(type.encode(type.create(obj)).finish());
}

/** A wire-level mutation of an encoded message. */
export function mutate(b: Buffer, rng: Rng): Buffer {
  const out = Buffer.from(b);
  switch (rng.int(0, 6)) {
    case 0: // bit flips
      for (let i = rng.int(1, 4); i > 0 && out.length > 0; i--) out[rng.int(0, out.length - 1)] ^= 1 << rng.int(0, 7);
      return out;
    case 1: // truncated
      return out.subarray(0, rng.int(0, Math.max(0, out.length - 1)));
    case 2: // garbage appended
      return Buffer.concat([out, randomBytes(rng, rng.int(1, 16))]);
    case 3: // a field with a huge length
      return Buffer.concat([out, Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])]);
    case 4: // a bogus tag (field 0 / wire type 7)
      return Buffer.concat([Buffer.from([rng.pick([0x00, 0x07, 0x0f, 0xff])]), out]);
    case 5: // an overlong varint
      return Buffer.concat([out, Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]);
    default: // a chunk duplicated
      if (out.length < 2) return Buffer.concat([out, out]);
      {
        const a = rng.int(0, out.length - 1);
        const e = rng.int(a, out.length);
        return Buffer.concat([out.subarray(0, e), out.subarray(a, e), out.subarray(e)]);
      }
  }
}

function randomBytes(rng: Rng, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 255);
  return b;
}

// ---------------------------------------------------------------------------------
// Calls

export interface CallOutcome {
  code: number;
  details: string;
  ms: number;
  /** Response messages received (streams). */
  messages: number;
}

const identity = (b: Buffer): Buffer => b;

function unaryRaw(c: grpc.Client, path: string, body: Buffer, deadlineMs: number): Promise<CallOutcome> {
  const t = Date.now();
  return new Promise((resolve) => {
    c.makeUnaryRequest<Buffer, Buffer>(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err) => {
      resolve({ code: err ? (err.code ?? -1) : 0, details: err ? (err.details ?? err.message) : '', ms: Date.now() - t, messages: err ? 0 : 1 });
    });
  });
}

function serverStreamRaw(c: grpc.Client, path: string, body: Buffer, deadlineMs: number, rng: Rng): Promise<CallOutcome> {
  const t = Date.now();
  return new Promise((resolve) => {
    const call = c.makeServerStreamRequest<Buffer, Buffer>(path, identity, identity, body, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
    let messages = 0;
    const cutAfter = rng.chance(0.5) ? rng.int(1, 3) : Infinity;
    call.on('data', () => {
      if (++messages >= cutAfter) call.cancel(); // a stream cut mid-way
    });
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details, ms: Date.now() - t, messages }));
  });
}

function bidiRaw(c: grpc.Client, path: string, bodies: Buffer[], deadlineMs: number, rng: Rng): Promise<CallOutcome> {
  const t = Date.now();
  return new Promise((resolve) => {
    const call = c.makeBidiStreamRequest<Buffer, Buffer>(path, identity, identity, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
    let messages = 0;
    call.on('data', () => messages++);
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details, ms: Date.now() - t, messages }));
    for (const b of bodies) call.write(b);
    const end = rng.next();
    if (end < 0.4) call.end();
    else if (end < 0.8) setTimeout(() => call.cancel(), rng.int(0, 300)); // cut mid-way
    // else: leave it open until the deadline
  });
}

/**
 * One gRPC request over raw HTTP/2 with a lying frame: `prefixLen` in the 5-byte header
 * versus `payload` actually sent, optionally the compressed flag set. Resolves with the
 * grpc-status the server answered (-1: none) or rejects on a connection error.
 */
function rawFrame(authority: string, path: string, payload: Buffer, prefixLen: number, compressed: boolean, deadlineMs: number): Promise<CallOutcome> {
  const t = Date.now();
  return new Promise((resolve) => {
    const session = http2.connect(`http://${authority}`);
    let done = false;
    const finish = (code: number, details: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.close();
      session.destroy();
      resolve({ code, details, ms: Date.now() - t, messages: 0 });
    };
    const timer = setTimeout(() => finish(grpc.status.DEADLINE_EXCEEDED, 'no grpc-status before the deadline (raw frame)'), deadlineMs);
    session.on('error', (e) => finish(-2, `connection error: ${e.message}`));
    const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${deadlineMs}m` });
    const head = Buffer.alloc(5);
    head[0] = compressed ? 1 : 0;
    head.writeUInt32BE(prefixLen >>> 0, 1);
    let status: string | undefined;
    let message = '';
    const take = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) {
        status = String(h['grpc-status']);
        message = decodeURIComponent(String(h['grpc-message'] ?? ''));
      }
    };
    req.on('response', take);
    req.on('trailers', take);
    req.on('data', () => undefined);
    req.on('error', (e) => finish(-2, `stream error: ${e.message}`));
    req.on('close', () => finish(status === undefined ? -1 : Number(status), status === undefined ? `no grpc-status (rst code ${req.rstCode})` : message));
    req.end(Buffer.concat([head, payload]));
  });
}

// ---------------------------------------------------------------------------------
// The run

export interface FuzzTarget {
  name: string;
  addr: string;
  running: () => boolean;
}

export interface FuzzFinding {
  kind: 'crash' | 'hang' | 'internal-error' | 'bad-status' | 'no-status';
  method: string;
  mode: string;
  detail: string;
  /** Hex of the request (first 2 KiB). */
  request: string;
}

export interface FuzzReport {
  seed: number;
  calls: number;
  byMethod: Record<string, number>;
  byCode: Record<string, number>;
  /** One message per status code, as an example of what the member answers. */
  examples: Record<string, string>;
  findings: FuzzFinding[];
  /** Slow answers from an overloaded member (not findings: the member answered other calls meanwhile slowly too). */
  slow: string[];
}

export interface FuzzOptions {
  seed: number;
  budgetMs: number;
  /** Concurrent callers (default 4). */
  concurrency?: number;
  /** Deadline per call (default 5 s). */
  deadlineMs?: number;
  log?: (s: string) => void;
}

const CODE_NAMES = Object.fromEntries(Object.entries(grpc.status).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]));
const JS_ERROR = /cairn: internal error|TypeError|ReferenceError|RangeError|Cannot read prop|is not a function|undefined is not|Maximum call stack/;

export async function runFuzz(targets: FuzzTarget[], opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? ((s: string) => console.log(s));
  const deadlineMs = opts.deadlineMs ?? 5_000;
  const methods = allMethods();
  const report: FuzzReport = { seed: opts.seed, calls: 0, byMethod: {}, byCode: {}, examples: {}, findings: [], slow: [] };
  const clients = targets.map((t) => new grpc.Client(t.addr, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 }));
  const end = Date.now() + opts.budgetMs;
  const crashed = new Set<string>();
  // Which methods each worker starts with, so every method is hit early in any budget.
  let next = 0;

  const check = async (ti: number, m: FuzzMethod, mode: string, req: Buffer, o: CallOutcome): Promise<void> => {
    report.calls++;
    report.byMethod[m.path] = (report.byMethod[m.path] ?? 0) + 1;
    const cname = CODE_NAMES[o.code] ?? String(o.code);
    report.byCode[cname] = (report.byCode[cname] ?? 0) + 1;
    if (o.code !== 0 && !(cname in report.examples)) report.examples[cname] = `${m.name}: ${o.details.slice(0, 160)}`;
    const t = targets[ti];
    const finding = (kind: FuzzFinding['kind'], detail: string): void => {
      report.findings.push({ kind, method: m.path, mode, detail, request: req.subarray(0, 2048).toString('hex') });
      log(`fuzz finding (seed ${opts.seed}): ${kind} ${m.path} [${mode}] ${detail}`);
    };
    if (!t.running()) {
      if (!crashed.has(t.name)) finding('crash', `member ${t.name} is not running after this call (status ${cname}: ${o.details})`);
      crashed.add(t.name);
      return;
    }
    if (o.code === -1 || o.code === -2) return finding('no-status', o.details);
    if (!(o.code >= 0 && o.code <= 16)) return finding('bad-status', `status ${o.code}: ${o.details}`);
    if (o.code !== 0 && o.details === '' && o.code !== grpc.status.CANCELLED && o.code !== grpc.status.DEADLINE_EXCEEDED) return finding('bad-status', `${cname} without a message`);
    if (JS_ERROR.test(o.details)) return finding('internal-error', `${cname}: ${o.details.slice(0, 300)}`);
    if (o.code === grpc.status.UNAVAILABLE && /ECONNRESET|Connection dropped|ECONNREFUSED|closed/i.test(o.details)) {
      // The connection went away: fine only if the member is still up and answers.
      const probe = await unaryRaw(clients[ti], '/etcdserverpb.Maintenance/Status', Buffer.alloc(0), 3_000);
      if (probe.code !== 0) finding('crash', `connection lost (${o.details}) and Status then failed: ${probe.details}`);
      return;
    }
    if (o.code === grpc.status.DEADLINE_EXCEEDED && !MAY_WAIT.has(m.name)) {
      const probe = await unaryRaw(clients[ti], '/etcdserverpb.Maintenance/Status', Buffer.alloc(0), 2_000);
      if (probe.code === 0) finding('hang', `no answer in ${deadlineMs} ms while the member answered Status in ${probe.ms} ms`);
      else report.slow.push(`${m.path} [${mode}]: deadline exceeded and Status too (${probe.details})`);
    }
  };

  const worker = async (w: number): Promise<void> => {
    const rng = new Rng((opts.seed + w * 7919) >>> 0);
    while (Date.now() < end) {
      const live = targets.map((_, i) => i).filter((i) => !crashed.has(targets[i].name));
      if (live.length === 0) return;
      const m = next < methods.length ? methods[next++] : rng.pick(methods);
      const ti = rng.pick(live);
      const c = clients[ti];
      const mode = STRUCTURED_ONLY.has(m.name) ? 'structured' : rng.pick(['structured', 'structured', 'mutated', 'random', 'frame'] as const);
      let req: Buffer;
      if (mode === 'random') req = randomBytes(rng, rng.chance(0.8) ? rng.int(0, 64) : rng.int(65, 8192));
      else {
        const obj = randomMessage(m.req, rng);
        tame(m, obj);
        req = encode(m.req, obj);
        if (mode === 'mutated') req = mutate(req, rng);
      }
      let o: CallOutcome;
      if (mode === 'frame') {
        // The length prefix lies (truncated or longer than allowed), or a compressed flag
        // comes without a grpc-encoding.
        const kind = rng.int(0, 2);
        const prefix = kind === 0 ? req.length + rng.int(1, 1000) : kind === 1 ? rng.pick([0xffffffff, 64 * 1024 * 1024, 4 * 1024 * 1024]) : req.length;
        o = await rawFrame(targets[ti].addr, m.path, kind === 0 ? req.subarray(0, Math.max(0, req.length - 1)) : req, prefix, kind === 2, deadlineMs);
        if (o.code === -1 && !targets[ti].running()) o = { ...o, details: `member gone: ${o.details}` };
        // A reset stream without status is how grpc-js answers some framing errors; only a
        // member that stops answering is a failure for raw frames.
        if (o.code === -1 || o.code === -2) {
          const probe = await unaryRaw(c, '/etcdserverpb.Maintenance/Status', Buffer.alloc(0), 3_000);
          o = probe.code === 0 ? { ...o, code: grpc.status.INTERNAL, details: `stream reset without status (${o.details}); member still answers` } : o;
        }
      } else if (m.requestStream) {
        const bodies = [req];
        for (let i = rng.int(0, 4); i > 0; i--) bodies.push(rng.chance(0.7) ? encode(m.req, randomMessage(m.req, rng, 0, false)) : randomBytes(rng, rng.int(0, 40)));
        o = await bidiRaw(c, m.path, bodies, Math.min(deadlineMs, 2_000), rng);
      } else if (m.responseStream) {
        o = await serverStreamRaw(c, m.path, req, Math.min(deadlineMs, 3_000), rng);
      } else {
        o = await unaryRaw(c, m.path, req, deadlineMs);
      }
      await check(ti, m, mode, req, o);
      if (report.findings.length >= 50) return;
    }
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, (_, i) => worker(i)));
  } finally {
    for (const c of clients) c.close();
  }
  return report;
}

export function formatReport(r: FuzzReport): string {
  const methods = Object.keys(r.byMethod).length;
  return [
    `fuzz: seed ${r.seed}, ${r.calls} calls over ${methods} methods; statuses: ${Object.entries(r.byCode)
      .sort(([, a], [, b]) => b - a)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    `fuzz: examples: ${Object.entries(r.examples)
      .map(([k, v]) => `${k} (${v})`)
      .join('; ')}`,
    `fuzz: ${r.findings.length} findings${r.slow.length ? `, ${r.slow.length} slow answers under load` : ''}`,
    ...r.findings.slice(0, 20).map((f) => `  - ${f.kind} ${f.method} [${f.mode}]: ${f.detail}\n    request (hex): ${f.request.slice(0, 400)}${f.request.length > 400 ? '...' : ''}`),
  ].join('\n');
}
