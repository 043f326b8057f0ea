// Generates static protobuf code for the etcd v3 API from proto/ into src/gen/.
// Output: src/gen/proto.js (CommonJS, protobufjs static module), src/gen/proto.d.ts, and
// src/gen/proto-schema.json (the reflection schema with .proto field names).
// Skips work when the outputs are newer than every .proto file.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const protoRoot = join(root, 'proto');
const outDir = join(root, 'src', 'gen');
const outJs = join(outDir, 'proto.js');
const outDts = join(outDir, 'proto.d.ts');
const outSchema = join(outDir, 'proto-schema.json');

function listProtos(dir) {
  const found = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) found.push(...listProtos(p));
    else if (name.endsWith('.proto')) found.push(p);
  }
  return found.sort();
}

const protos = listProtos(protoRoot);
if (protos.length === 0) throw new Error('no .proto files under proto/');
const newestProto = Math.max(...protos.map((p) => statSync(p).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
const fresh = (p) => existsSync(p) && statSync(p).mtimeMs > newestProto;
if (fresh(outJs) && fresh(outDts) && fresh(outSchema)) {
  process.exit(0);
}
mkdirSync(outDir, { recursive: true });
const bin = (name) => join(root, 'node_modules', '.bin', name);
execFileSync(bin('pbjs'), ['-t', 'static-module', '-w', 'commonjs', '--no-verify', '--no-delimited', '--no-convert', '-p', protoRoot, '-o', outJs, ...protos], { stdio: 'inherit' });
execFileSync(bin('pbts'), ['-o', outDts, outJs], { stdio: 'inherit' });
// The schema as JSON with the .proto field names, for the JSON gateway's protobuf-JSON mapping.
execFileSync(bin('pbjs'), ['-t', 'json', '--keep-case', '-p', protoRoot, '-o', outSchema, ...protos], { stdio: 'inherit' });
