#!/usr/bin/env node
// A repeatable probe of cairn's memory and restart time at a large key count, for A/B work
// on the store (the full side-by-side with etcd is `npm run bench -- --scale`).
//
//   node scripts/scale-probe.mjs load <dir> [keys=1000000] [--puts SECONDS]
//       start cairn on <dir>, put <keys> keys (8-byte keys, 256-byte incompressible values,
//       Txn of 100 puts, 16 in flight), print RSS after 3 s idle, optionally run the put
//       workload over all keys for SECONDS (as `--scale` does), then kill -9 it.
//   node scripts/scale-probe.mjs restart <dir> [--cpu-prof] [--rounds N]
//       copy <dir> to a temp dir, start cairn on the copy, print spawn -> first answered
//       linearizable Range of the last loaded key, and RSS then; N times.
//
// The server is $CAIRN_BIN or this worktree's dist/src/bin/cairn.js; run `npm run build`
// first. Node options for the server: $CAIRN_NODE_ARGS (space separated).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { etcdserverpb } = require(path.join(root, 'dist/src/gen/proto.js'));
const bin = process.env.CAIRN_BIN ?? path.join(root, 'dist/src/bin/cairn.js');
const nodeArgs = (process.env.CAIRN_NODE_ARGS ?? '').split(' ').filter((s) => s !== '');

const KEY_SIZE = 8;
const VAL_SIZE = 256;
const OPS_PER_TXN = 100;
const IN_FLIGHT = 16;

const keyOf = (i) => Buffer.from(String(i).padStart(KEY_SIZE, '0'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rssMiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m[1]) / 1024);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startCairn(dir, extraNodeArgs = []) {
  const [client, peer] = [await freePort(), await freePort()];
  const args = [
    ...nodeArgs,
    ...extraNodeArgs,
    bin,
    '--data-dir', dir,
    '--listen-client-urls', `http://127.0.0.1:${client}`,
    '--advertise-client-urls', `http://127.0.0.1:${client}`,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
    '--initial-cluster', `default=http://127.0.0.1:${peer}`,
    '--log-level', 'warn',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: dir });
  return { child, endpoint: `http://127.0.0.1:${client}` };
}

function connect(endpoint) {
  return new Promise((resolve, reject) => {
    const s = http2.connect(endpoint);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

function unary(session, method, body) {
  return new Promise((resolve, reject) => {
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame[0] = 0;
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const req = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks = [];
    let status;
    const read = (h) => {
      if (h['grpc-status'] !== undefined) status = String(h['grpc-status']) + ' ' + String(h['grpc-message'] ?? '');
    };
    req.on('response', read);
    req.on('trailers', read);
    req.on('data', (c) => chunks.push(c));
    req.on('error', reject);
    req.on('close', () => {
      if (!status?.startsWith('0 ')) return reject(new Error(`${method}: grpc-status ${status}`));
      const all = Buffer.concat(chunks);
      resolve(all.subarray(5, 5 + all.readUInt32BE(1)));
    });
    req.end(frame);
  });
}

async function waitServed(endpoint, key, needKv = true, timeoutMs = 300_000) {
  const body = etcdserverpb.RangeRequest.encode({ key }).finish();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let s;
    try {
      s = await connect(endpoint);
      s.on('error', () => undefined);
      const r = etcdserverpb.RangeResponse.decode(await unary(s, '/etcdserverpb.KV/Range', body));
      if (r.kvs.length === 1 || !needKv) return;
    } catch {
      // not up yet
    } finally {
      s?.destroy();
    }
    await sleep(10);
  }
  throw new Error('not served in time');
}

async function load(dir, keys, putSeconds) {
  fs.mkdirSync(dir, { recursive: true });
  const { child, endpoint } = await startCairn(dir);
  await waitServed(endpoint, Buffer.from('x'), false, 30_000);
  const session = await connect(endpoint);
  const { valueOf } = require(path.join(root, 'dist/bench/loadgen/workloads.js'));
  const value = valueOf(VAL_SIZE); // incompressible, as the bench's
  let next = 0;
  const t0 = Date.now();
  const worker = async () => {
    while (next < keys) {
      const lo = next;
      const hi = Math.min(keys, lo + OPS_PER_TXN);
      next = hi;
      const success = [];
      for (let i = lo; i < hi; i++) success.push({ requestPut: { key: keyOf(i), value } });
      await unary(session, '/etcdserverpb.KV/Txn', etcdserverpb.TxnRequest.encode({ success }).finish());
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  session.close();
  console.log(`loaded ${keys} keys in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  await sleep(3000);
  console.log(`RSS after load: ${rssMiB(child.pid)} MiB`);
  if (putSeconds > 0) {
    // As `--scale` does before its kill -9: random puts over all the keys (history, WAL entries).
    const { runLoad } = require(path.join(root, 'dist/bench/loadgen/index.js'));
    const r = await runLoad({
      endpoint,
      workload: 'put',
      keys: { keySize: KEY_SIZE, valSize: VAL_SIZE, keySpace: keys, keyOrder: 'random' },
      clients: 64,
      conns: 4,
      warmupMs: 1000,
      durationMs: putSeconds * 1000,
    });
    console.log(`then ${Math.round(r.opsPerSec)} puts/s for ${putSeconds} s`);
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
}

async function restart(dir, cpuProf, rounds) {
  const keysFile = path.join(dir, '.keys');
  const lastKey = keyOf(Number(fs.readFileSync(keysFile, 'utf8')) - 1);
  for (let n = 0; n < rounds; n++) {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'scale-probe-'));
    fs.cpSync(dir, copy, { recursive: true });
    const t0 = process.hrtime.bigint();
    const { child, endpoint } = await startCairn(copy, cpuProf ? ['--cpu-prof', '--cpu-prof-dir', process.env.PROF_DIR ?? '/tmp'] : []);
    await waitServed(endpoint, lastKey);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    await sleep(1000);
    console.log(`restart: first Range after ${(ms / 1000).toFixed(2)} s, RSS ${rssMiB(child.pid)} MiB`);
    child.kill(cpuProf ? 'SIGTERM' : 'SIGKILL');
    await new Promise((r) => child.once('exit', r));
    fs.rmSync(copy, { recursive: true, force: true });
  }
}

const [mode, dir, ...rest] = process.argv.slice(2);
if (mode === 'load') {
  const keys = Number(rest[0] ?? 1_000_000);
  const p = rest.indexOf('--puts');
  await load(dir, keys, p >= 0 ? Number(rest[p + 1]) : 0);
  fs.writeFileSync(path.join(dir, '.keys'), String(keys));
} else if (mode === 'restart') {
  const r = rest.indexOf('--rounds');
  await restart(dir, rest.includes('--cpu-prof'), r >= 0 ? Number(rest[r + 1]) : 1);
} else {
  console.error('usage: scale-probe.mjs load <dir> [keys] | restart <dir> [--cpu-prof] [--rounds N]');
  process.exit(2);
}
