#!/usr/bin/env node
// cairnctl: etcdctl v3 compatible command line client (see src/cli).
import { run } from '../cli/main';

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
