/**
 * The two cairnctl commands that work on files rather than through a server: snapshot
 * status and snapshot restore. They need the server's on-disk formats, which the CLI does
 * not import (src/cli is built on the client only); the cairnctl entry point provides the
 * implementation (src/server/snapshot-offline.ts), loaded only when one of them runs.
 */

export interface DbStatus {
  /** crc32c over every key and value, in key order (etcd's hash covers its bbolt buckets the same way). */
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

export interface RestoreOptions {
  file: string;
  name: string;
  dataDir: string;
  walDir: string;
  initialCluster: string;
  initialClusterToken: string;
  initialAdvertisePeerUrls: string[];
  skipHashCheck: boolean;
  /** Told the share of entries loaded so far (0..1), for a progress bar. */
  onProgress?: (fraction: number) => void;
}

/** The restored cluster's identity (what etcdctl logs after a restore). */
export interface RestoredCluster {
  clusterId: bigint;
  members: Array<{ id: bigint; peerUrls: string[] }>;
}

export interface OfflineSnapshots {
  snapshotStatus(file: string): Promise<DbStatus>;
  /** The checks before anything is written; throws why not. */
  validateRestore(o: RestoreOptions): RestoredCluster;
  snapshotRestore(o: RestoreOptions): Promise<RestoredCluster>;
  /** An error etcdctl would print in its own words (the message is that text). */
  isFileError(e: unknown): boolean;
}

let load: (() => Promise<OfflineSnapshots>) | undefined;

/** Called by the cairnctl entry point. */
export function provideOfflineSnapshots(loader: () => Promise<OfflineSnapshots>): void {
  load = loader;
}

export function offlineSnapshots(): Promise<OfflineSnapshots> {
  if (load === undefined) return Promise.reject(new Error('snapshot status/restore are not available here (run them through cairnctl)'));
  return load();
}
