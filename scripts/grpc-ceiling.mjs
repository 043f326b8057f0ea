#!/usr/bin/env node
// The ceiling the RPC layer alone gives a unary call on this machine: a server whose Put
// answers at once (no storage, no consensus), driven by the bench's load generator exactly
// as a put workload drives cairn or etcd. Run `npm run build` first.
//
//   [GRPC_OPTIONS='{"grpc.enable_channelz":0}'] node scripts/grpc-ceiling.mjs [grpc-js|h2] [seconds=4] [rounds=3]
//
// grpc-js: a @grpc/grpc-js Server with cairn's KV/Put method definition (protobufjs codec)
//   and the same server options as cairn's client port; the handler answers a PutResponse
//   with a header, as cairn's does.
// h2: node:http2 alone, hand-framed gRPC (the floor under any Node gRPC server).
// The server runs in a child process, so its CPU is accounted apart from the load generator's.
import { fork } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

if (process.argv[2] === '--serve') {
  const kind = process.argv[3];
  const { etcdserverpb } = require(path.join(root, 'dist/src/gen/proto.js'));
  const header = { clusterId: 1, memberId: 2, revision: 3, raftTerm: 4 };
  if (kind === 'grpc-js') {
    const grpc = require(path.join(root, 'node_modules/@grpc/grpc-js'));
    const { kvService } = require(path.join(root, 'dist/src/api/kv.js'));
    // GRPC_OPTIONS='{"grpc.enable_channelz":0}' tries server options.
    const extra = JSON.parse(process.env.GRPC_OPTIONS ?? '{}');
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 2 * 1024 * 1024, 'grpc.max_send_message_length': 2 ** 31 - 1, ...extra });
    server.addService({ Put: kvService.Put }, { Put: (call, cb) => cb(null, { header }) });
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) throw err;
      process.send({ port });
    });
  } else {
    const http2 = require('node:http2');
    const body = etcdserverpb.PutResponse.encode({ header }).finish();
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    frame.set(body, 5);
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(frame);
      });
    });
    server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  }
} else {
  const kind = process.argv[2] ?? 'grpc-js';
  const seconds = Number(process.argv[3] ?? 4);
  const rounds = Number(process.argv[4] ?? 3);
  const { runLoad } = require(path.join(root, 'dist/bench/loadgen/index.js'));
  for (let r = 1; r <= rounds; r++) {
    const child = fork(fileURLToPath(import.meta.url), ['--serve', kind]);
    const { port } = await new Promise((resolve) => child.once('message', resolve));
    const res = await runLoad({
      endpoint: `http://127.0.0.1:${port}`,
      workload: 'put',
      keys: { keySize: 8, valSize: 256, keySpace: 100000, keyOrder: 'random' },
      clients: 64,
      conns: 4,
      warmupMs: 1000,
      durationMs: seconds * 1000,
      serverPid: child.pid,
    });
    const other = res.machineCpuCores - res.serverCpuCores - res.loadgenCpuCores;
    console.log(
      `${kind} no-op Put, round ${r}: ${Math.round(res.opsPerSec)} ops/s, p50 ${res.latencyMs.p50} ms, p99 ${res.latencyMs.p99} ms, errors ${res.errorsTotal}; ` +
        `CPU server ${res.serverCpuCores.toFixed(2)} (${Math.round((res.serverCpuCores * 1e6) / res.opsPerSec)} us/call), load generator ${res.loadgenCpuCores.toFixed(2)}, other ${other.toFixed(2)}`,
    );
    child.kill();
  }
}
