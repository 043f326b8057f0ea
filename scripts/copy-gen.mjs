// tsc does not copy plain .js files; the generated protobuf module must sit beside the compiled code.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
mkdirSync(join(root, 'dist', 'src', 'gen'), { recursive: true });
for (const f of ['proto.js', 'proto-schema.json']) copyFileSync(join(root, 'src', 'gen', f), join(root, 'dist', 'src', 'gen', f));
