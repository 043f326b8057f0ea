// The cairn package: its TypeScript client for etcd v3 API servers (cairn and etcd), with
// the concurrency recipes. The server itself is the `cairn` binary (src/bin/cairn.ts).
export * from './client';
