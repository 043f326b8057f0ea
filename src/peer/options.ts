import type { Logger } from 'pino';
import { FRAME_BYTES_MAX } from './frame';
import type { PeerSockets } from './sockets';

/** Messages waiting per peer; past this, send() drops and counts (Raft retransmits). */
export const QUEUE_MESSAGES_MAX = 4096;
/** Bytes waiting per peer, whatever the message count. */
export const QUEUE_BYTES_MAX = 64 * 1024 * 1024;
/** A BATCH frame is filled up to this many bytes (one larger message still goes alone). */
export const BATCH_BYTES_MAX = 1024 * 1024;
/** One message must fit in one BATCH frame with its 4-byte length. */
export const MESSAGE_BYTES_MAX = FRAME_BYTES_MAX - 4;
export const DIAL_TIMEOUT_MS = 1000;
export const HANDSHAKE_TIMEOUT_MS = 2000;
export const BACKOFF_MIN_MS = 50;
export const BACKOFF_MAX_MS = 5000;
export const PING_INTERVAL_MS = 1000;
/** A message stream that carried nothing (not even a ping or pong) this long is dead. */
export const IDLE_TIMEOUT_PINGS = 5;
/** isActive(): heard from within this many ping intervals. */
export const ACTIVE_WINDOW_PINGS = 3;
export const TCP_KEEPALIVE_MS = 10_000;

/** A snapshot is sent in SNAP_CHUNK frames of at most this many data bytes. */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;
/** Snapshot metadata (and any frame on a snapshot stream) must fit in this. */
export const SNAPSHOT_METADATA_BYTES_MAX = 1024 * 1024;
/** Received snapshot data buffered ahead of the handler before the socket is paused. */
export const SNAPSHOT_INBOX_BYTES_MAX = 4 * 1024 * 1024;
/** Snapshots received at once by one member; more are refused (the sender retries later). */
export const INBOUND_SNAPSHOTS_MAX = 4;

export interface PeerTransportOptions {
  /** uint64, full precision; 0n for a member joining an existing cluster (adopted from the first peer that dials in). */
  clusterId: bigint;
  /** Called when a joining member adopts the cluster ID (see clusterId). */
  onClusterId?: (clusterId: bigint, memberId: bigint) => void;
  memberId: bigint;
  /** --listen-peer-urls: http://host:port (port 0: the OS picks, start() reports it), unix://path. */
  listenUrls: string[];
  logger?: Logger;
  queueMessagesMax?: number;
  queueBytesMax?: number;
  batchBytesMax?: number;
  dialTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  pingIntervalMs?: number;
  snapshotChunkBytes?: number;
  /** How sockets are opened; plain TCP and unix sockets by default (TLS later). */
  sockets?: PeerSockets;
}

export interface Limits {
  queueMessagesMax: number;
  queueBytesMax: number;
  batchBytesMax: number;
  dialTimeoutMs: number;
  handshakeTimeoutMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  pingIntervalMs: number;
  idleTimeoutMs: number;
  activeWindowMs: number;
  snapshotChunkBytes: number;
}

export function resolveLimits(o: PeerTransportOptions): Limits {
  const pingIntervalMs = positive('pingIntervalMs', o.pingIntervalMs ?? PING_INTERVAL_MS);
  const limits: Limits = {
    queueMessagesMax: positive('queueMessagesMax', o.queueMessagesMax ?? QUEUE_MESSAGES_MAX),
    queueBytesMax: positive('queueBytesMax', o.queueBytesMax ?? QUEUE_BYTES_MAX),
    batchBytesMax: positive('batchBytesMax', o.batchBytesMax ?? BATCH_BYTES_MAX),
    dialTimeoutMs: positive('dialTimeoutMs', o.dialTimeoutMs ?? DIAL_TIMEOUT_MS),
    handshakeTimeoutMs: positive('handshakeTimeoutMs', o.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS),
    backoffMinMs: positive('backoffMinMs', o.backoffMinMs ?? BACKOFF_MIN_MS),
    backoffMaxMs: positive('backoffMaxMs', o.backoffMaxMs ?? BACKOFF_MAX_MS),
    pingIntervalMs,
    idleTimeoutMs: pingIntervalMs * IDLE_TIMEOUT_PINGS,
    activeWindowMs: pingIntervalMs * ACTIVE_WINDOW_PINGS,
    snapshotChunkBytes: positive('snapshotChunkBytes', o.snapshotChunkBytes ?? SNAPSHOT_CHUNK_BYTES),
  };
  if (limits.batchBytesMax > FRAME_BYTES_MAX) throw new RangeError(`batchBytesMax must be at most ${FRAME_BYTES_MAX}`);
  if (limits.snapshotChunkBytes > SNAPSHOT_METADATA_BYTES_MAX) {
    throw new RangeError(`snapshotChunkBytes must be at most ${SNAPSHOT_METADATA_BYTES_MAX}`);
  }
  if (limits.backoffMaxMs < limits.backoffMinMs) throw new RangeError('backoffMaxMs must be at least backoffMinMs');
  if (o.clusterId < 0n || o.clusterId >= 1n << 64n) throw new RangeError('clusterId must be a uint64');
  if (o.memberId < 0n || o.memberId >= 1n << 64n) throw new RangeError('memberId must be a uint64');
  return limits;
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return v;
}

/** Exponential backoff with equal jitter: half the step fixed, half random. */
export function backoffDelayMs(attempt: number, minMs: number, maxMs: number): number {
  const stepMs = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return stepMs / 2 + Math.random() * (stepMs / 2);
}
