import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Limits } from './options';
import type { PeerSockets } from './sockets';

export interface PeerHandlers {
  /** One call per message, in the order the sender sent them. `message` is not reused. */
  onMessage(from: bigint, message: Uint8Array): void;
  /**
   * A snapshot arrives. Resolve once it is installed; a rejection is reported to the sender.
   * `data` ends after the last chunk, or throws if the stream breaks first.
   */
  onSnapshot(from: bigint, metadata: Uint8Array, data: AsyncIterable<Buffer>): Promise<void>;
}

/** What the parts of a transport share. */
export interface TransportContext {
  /** 0n until a member joining an existing cluster learns it from the first peer that dials in. */
  clusterId: bigint;
  /** Told once, when a joining member adopts the cluster ID (and its own member ID) from the first peer that dials in. */
  readonly onClusterId: ((clusterId: bigint, memberId: bigint) => void) | undefined;
  /** 0n for a member joining with no ID yet: the first peer that dials in names it (`member add` chose it). */
  memberId: bigint;
  readonly log: Logger;
  readonly limits: Limits;
  readonly sockets: PeerSockets;
  readonly handlers: PeerHandlers;
  /** A frame came from member `from` (any stream): it is alive. */
  heard(from: bigint): void;
}

const closes = new WeakMap<Socket, Promise<void>>();

/**
 * Call when a socket is created or accepted: socketClosed() can then wait for its 'close'
 * event, which comes after its handle is freed (`socket.closed` turns true before that).
 */
export function watchClose(socket: Socket): void {
  if (!closes.has(socket)) closes.set(socket, new Promise((resolve) => socket.once('close', () => resolve())));
}

/** Resolves once the socket's handle is closed (so no handle outlives stop()). */
export function socketClosed(socket: Socket): Promise<void> {
  const closed = closes.get(socket);
  if (closed === undefined) throw new Error('socketClosed() on a socket that was not watched');
  return closed;
}

/** Resolves after the event loop ran its close callbacks (a server's handle outlives its 'close' event). */
export function closeCallbacksRun(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
