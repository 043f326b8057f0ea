#!/usr/bin/env node
// cairnctl: etcdctl v3 compatible command line client (see src/cli).
import { run } from '../cli/main';
import { provideOfflineSnapshots } from '../cli/offline';

// snapshot status / restore read and write the server's files: the CLI gets that code from
// here (src/cli imports only the client), loaded only when one of them runs.
provideOfflineSnapshots(async () => (await import('../server/snapshot-offline')).offlineSnapshots);

// grpc-js sets the TLS server name to the endpoint's host even when it is an IP address,
// and Node warns about that (DEP0123) on stderr; cairnctl's stderr is etcdctl's.
process.noDeprecation = true;

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`Error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
