/**
 * snapshot status and snapshot restore (etcdctl/ctlv3/command/snapshot_command.go) for
 * cairn's snapshot files, and the progress bar snapshot save and restore draw on a
 * terminal. etcdctl reads etcd's bbolt files only and cairnctl reads cairn's: the
 * commands, flags, checks and output formats are etcdctl's, the file format is cairn's.
 */
import * as fs from 'node:fs';
import { b, s, type Command } from './cmd';
import { humanizeBytes, jobj, zapEpoch } from './gofmt';
import { printTable, unsupported, type Display } from './printers';
import { Exit, err, exitWithError, out } from './runtime';
import { offlineSnapshots, type DbStatus } from './offline';

/** A one-line progress bar on stderr, drawn only when stderr is a terminal. */
export class Progress {
  private readonly on = process.stderr.isTTY === true;
  private last = -1;
  constructor(private readonly label: string) {}

  /** fraction in 0..1, or a byte count when the total is unknown. */
  update(fraction: number | null, bytes: number): void {
    if (!this.on) return;
    const pct = fraction === null ? -1 : Math.floor(fraction * 100);
    if (pct === this.last && fraction !== null) return;
    this.last = pct;
    const width = 30;
    const bar = fraction === null ? '' : '[' + '#'.repeat(Math.round(fraction * width)).padEnd(width, ' ') + `] ${String(pct).padStart(3)}% `;
    process.stderr.write(`\r\x1b[2K${this.label} ${bar}${humanizeBytes(bytes)}`);
  }

  done(): void {
    if (this.on && this.last !== -1) process.stderr.write('\r\x1b[2K');
  }
}

function printDbStatus(d: Display, ds: DbStatus): void {
  if (d.format === 'json') return out(jobj([['hash', String(ds.hash)], ['revision', String(ds.revision)], ['totalKey', String(ds.totalKey)], ['totalSize', String(ds.totalSize)]]) + '\n');
  if (d.format === 'fields') return out(`"Hash" : ${ds.hash}\n"Revision" : ${ds.revision}\n"Keys" : ${ds.totalKey}\n"Size" : ${ds.totalSize}\n`);
  const row = [ds.hash.toString(16), String(ds.revision), String(ds.totalKey), humanizeBytes(ds.totalSize)];
  if (d.format === 'table') return printTable(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [row]);
  if (d.format !== 'simple') unsupported(d);
  out(row.join(', ') + '\n');
}

function zapInfo(caller: string, msg: string, fields: Record<string, unknown>): void {
  err(JSON.stringify({ level: 'info', ts: Number(zapEpoch()), caller, msg, ...fields }) + '\n');
}

export const SNAPSHOT_STATUS: Command = {
  name: 'status',
  short: 'Gets backend snapshot status of a given file',
  usage: 'snapshot status <filename>',
  long: 'When --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\nThe items in the lists are hash, revision, total keys, total size.\n',
  flags: [],
  noClient: true,
  run: async (ctx, args) => {
    if (args.length !== 1) exitWithError(Exit.BadArgs, 'snapshot status requires exactly one argument');
    // etcdctl's initDisplayFromCmd (the offline commands have no client to do it).
    if (!['simple', 'json', 'fields', 'table', 'protobuf'].includes(ctx.display.format)) exitWithError(Exit.BadFeature, 'unsupported output format');
    const { snapshotStatus, isFileError } = await offlineSnapshots();
    let ds: DbStatus;
    try {
      ds = await snapshotStatus(args[0]);
    } catch (e) {
      return exitWithError(Exit.Error, isFileError(e) ? (e as Error).message : 'invalid database');
    }
    printDbStatus(ctx.display, ds);
  },
};

export const SNAPSHOT_RESTORE: Command = {
  name: 'restore',
  short: 'Restores an etcd member snapshot to an etcd directory',
  usage: 'snapshot restore <filename> [options]',
  flags: [
    s('data-dir', '', 'Path to the data directory'),
    s('initial-advertise-peer-urls', 'http://localhost:2380', "List of this member's peer URLs to advertise to the rest of the cluster"),
    s('initial-cluster', 'default=http://localhost:2380', 'Initial cluster configuration for restore bootstrap'),
    s('initial-cluster-token', 'etcd-cluster', 'Initial cluster token for the etcd cluster during restore bootstrap'),
    s('name', 'default', 'Human-readable name for this member'),
    b('skip-hash-check', 'Ignore snapshot integrity hash value (required if copied from data directory)'),
    s('wal-dir', '', 'Path to the WAL directory (use --data-dir if none given)'),
  ],
  noClient: true,
  run: async (_ctx, args, f) => {
    if (args.length !== 1) exitWithError(Exit.BadArgs, 'snapshot restore requires exactly one argument');
    const name = f.str('name');
    const dataDir = f.str('data-dir') || `${name}.etcd`;
    const walDir = f.str('wal-dir');
    const { snapshotRestore, validateRestore, isFileError } = await offlineSnapshots();
    const progress = new Progress('restoring');
    const where = { path: args[0], 'wal-dir': walDir || `${dataDir}/member/wal`, 'data-dir': dataDir };
    const opts = {
      file: args[0],
      name,
      dataDir,
      walDir,
      initialCluster: f.str('initial-cluster'),
      initialClusterToken: f.str('initial-cluster-token'),
      initialAdvertisePeerUrls: f.str('initial-advertise-peer-urls').split(','),
      skipHashCheck: f.bool('skip-hash-check'),
      onProgress: (x: number) => progress.update(x, fs.statSync(args[0]).size * x),
    };
    try {
      validateRestore(opts);
      zapInfo('snapshot/v3_snapshot.go:296', 'restoring snapshot', where);
      const meta = await snapshotRestore(opts);
      progress.done();
      for (const m of meta.members) {
        zapInfo('membership/cluster.go:392', 'added member', { 'cluster-id': meta.clusterId.toString(16), 'local-member-id': '0', 'added-peer-id': m.id.toString(16), 'added-peer-peer-urls': m.peerUrls });
      }
      zapInfo('snapshot/v3_snapshot.go:309', 'restored snapshot', where);
    } catch (e) {
      progress.done();
      return exitWithError(Exit.Error, isFileError(e) ? (e as Error).message : e instanceof Error ? e.message : String(e));
    }
  },
};
