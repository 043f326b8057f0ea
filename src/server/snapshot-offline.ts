/**
 * `cairnctl snapshot status` and `snapshot restore`: cairn snapshot files read and turned
 * into a data dir offline. The CLI knows no server code (src/cli imports only the client):
 * the cairnctl entry point hands it this module (see cli/offline.ts). It does not copy the
 * server's on-disk formats: it uses the server's own snapshot reader
 * (server/snapshot.ts), LevelDB backend, membership table, member metadata and WAL, the
 * same way a member installs a leader's snapshot and `--force-new-cluster` rewrites a WAL.
 *
 * A restored data dir is a new cluster (etcd's snapshot restore): the members come from
 * --initial-cluster, their IDs and the cluster ID from the peer URLs and
 * --initial-cluster-token; the key space, leases and revisions are the snapshot's; the WAL
 * holds the new member metadata and a snapshot mark at the snapshot's applied index.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { DbStatus, OfflineSnapshots, RestoreOptions, RestoredCluster } from '../cli/offline';
import { Backend } from '../mvcc/backend';
import { REV_PREFIX, parseRevKey } from '../mvcc/codec';
import { MvccStore } from '../mvcc/store';
import { encodeSnapshot } from '../raft/codec';
import { computeClusterId, computeMemberId } from './ids';
import { encodeMemberMeta, parseInitialCluster, type ClusterMember, type MemberMeta } from './member-meta';
import { Membership } from './membership';
import { SNAPSHOT_MAGIC, loadSnapshotFile } from './snapshot';
import { Wal } from '../wal/wal';

const SHA256_BYTES = 32;
const SNAPSHOT_ALIGN_BYTES = 512;
const MEMBER_PREFIX = 0x4d; // membership.ts's 'M' keys, replaced by the new cluster's members

/** Errors that etcdctl would print with its own wording. */
export class SnapshotFileError extends Error {}

const CRC32C = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

function crc32c(crc: number, b: Buffer): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < b.length; i++) c = CRC32C[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Is the file a cairn snapshot, and does it end with a valid sha256? */
function checkFile(file: string, skipHashCheck: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new SnapshotFileError(`stat ${file}: no such file or directory`, { cause: e });
  }
  const bytes = fs.readFileSync(file);
  if (st.size < SNAPSHOT_MAGIC.length + 4 || !bytes.subarray(0, SNAPSHOT_MAGIC.length).equals(SNAPSHOT_MAGIC)) throw new SnapshotFileError('invalid database');
  const hasHash = st.size % SNAPSHOT_ALIGN_BYTES === SHA256_BYTES;
  if (!hasHash) {
    if (!skipHashCheck) throw new SnapshotFileError('snapshot missing hash but --skip-hash-check=false');
    return;
  }
  if (skipHashCheck) return;
  const body = bytes.subarray(0, bytes.length - SHA256_BYTES);
  if (!createHash('sha256').update(body).digest().equals(bytes.subarray(bytes.length - SHA256_BYTES))) throw new SnapshotFileError('expected sha256 [...], got [...]');
}

export async function snapshotStatus(file: string): Promise<DbStatus> {
  checkFile(file, true);
  let hash = 0;
  let totalKey = 0;
  let revision = 0;
  await loadSnapshotFile(file, async (entries) => {
    for (const [k, v] of entries) {
      hash = crc32c(crc32c(hash, k), v);
      totalKey++;
      if (k[0] === REV_PREFIX) revision = Math.max(revision, parseRevKey(k).main);
    }
  });
  return { hash, revision, totalKey, totalSize: fs.statSync(file).size };
}

/** The new cluster's identity, derived from the flags as a fresh member derives it. */
export function restoredMeta(o: RestoreOptions): MemberMeta {
  const members: ClusterMember[] = parseInitialCluster(o.initialCluster).map((m) => ({ id: computeMemberId(m.peerUrls, o.initialClusterToken), name: m.name, peerUrls: m.peerUrls }));
  const self = members.find((m) => m.name === o.name);
  if (self === undefined) throw new SnapshotFileError(`couldn't find local name "${o.name}" in the initial cluster configuration`);
  if ([...self.peerUrls].sort().join(',') !== [...o.initialAdvertisePeerUrls].sort().join(',')) {
    throw new SnapshotFileError(`--initial-cluster has ${self.name}=${self.peerUrls.join(',')} but missing from --initial-advertise-peer-urls=${o.initialAdvertisePeerUrls.join(',')}`);
  }
  return { memberId: self.id, clusterId: computeClusterId(members.map((m) => m.id)), name: o.name, members };
}

/** The checks before anything is written: the new identity, or why not. */
export function validateRestore(o: RestoreOptions): MemberMeta {
  const meta = restoredMeta(o);
  if (fs.existsSync(o.dataDir)) throw new SnapshotFileError(`data-dir ${JSON.stringify(o.dataDir)} exists`);
  return meta;
}

export async function snapshotRestore(o: RestoreOptions): Promise<MemberMeta> {
  const meta = validateRestore(o);
  checkFile(o.file, o.skipHashCheck);
  try {
    return await build(o, meta);
  } catch (e) {
    // Nothing half-built is left to start from.
    fs.rmSync(o.dataDir, { recursive: true, force: true });
    if (o.walDir) fs.rmSync(o.walDir, { recursive: true, force: true });
    throw e;
  }
}

async function build(o: RestoreOptions, meta: MemberMeta): Promise<MemberMeta> {
  const memberDir = join(o.dataDir, 'member');
  fs.mkdirSync(memberDir, { recursive: true, mode: 0o700 });
  const size = fs.statSync(o.file).size;
  let loaded = 0;
  let failure: Error | undefined;
  const backend = await Backend.open(join(memberDir, 'db'), (e) => (failure = e));
  try {
    await loadSnapshotFile(o.file, async (entries) => {
      for (const [key, value] of entries) {
        // The old cluster's members are not the new one's.
        if (key[0] !== MEMBER_PREFIX) backend.put(Buffer.from(key), Buffer.from(value));
        loaded += key.length + value.length + 8;
      }
      await backend.commit();
      o.onProgress?.(Math.min(1, loaded / size));
    });
    const membership = new Membership(backend);
    await membership.load(meta.members);
    await backend.sync();
    const applied = (await MvccStore.open(backend)).consistentIndex;
    await backend.sync();
    if (failure) throw failure;
    // The log starts at the snapshot: member metadata, then a snapshot mark whose Raft
    // metadata names the new voters, then the hard state (as --force-new-cluster writes it).
    const { wal } = await Wal.open(o.walDir || join(memberDir, 'wal'));
    const term = 1;
    const voters = meta.members.map((m) => m.id).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    wal.appendMetadata(encodeMemberMeta(meta));
    wal.appendSnapshotMark({ index: applied, term, extra: Buffer.from(encodeSnapshot({ data: new Uint8Array(0), metadata: { index: applied, term, confState: { voters, learners: [] } } })) });
    wal.appendHardState({ term, vote: 0n, commit: applied });
    await wal.sync();
    await wal.close();
    o.onProgress?.(1);
    return meta;
  } finally {
    await backend.close();
  }
}

/** What cairnctl's entry point gives the CLI. */
export const offlineSnapshots: OfflineSnapshots = {
  snapshotStatus,
  validateRestore: (o: RestoreOptions): RestoredCluster => validateRestore(o),
  snapshotRestore: (o: RestoreOptions): Promise<RestoredCluster> => snapshotRestore(o),
  isFileError: (e: unknown): boolean => e instanceof SnapshotFileError,
};
export type { DbStatus };
