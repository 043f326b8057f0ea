import * as net from 'node:net';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { PeerTransport, type PeerHandlers, type PeerTransportOptions } from '../../src/peer';

export const CLUSTER_ID = 0xfedcba9876543210n; // above 2^53: must survive full precision

/** Fast timings so that reconnect and liveness tests take milliseconds. */
export const FAST = { backoffMinMs: 10, backoffMaxMs: 100, dialTimeoutMs: 500, handshakeTimeoutMs: 1000, pingIntervalMs: 100 };

export interface LogCapture {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
  has(msg: string, reasonIncludes?: string): boolean;
}

export function captureLog(): LogCapture {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return {
    logger: pino({ level: 'debug' }, stream),
    lines,
    has: (msg, reasonIncludes) =>
      lines.some((l) => l.msg === msg && (reasonIncludes === undefined || String(l.reason ?? '').includes(reasonIncludes))),
  };
}

export interface Member {
  id: bigint;
  t: PeerTransport;
  url: string;
  /** Every URL it listens on (ports resolved). */
  urls: string[];
  /** Messages received, per sender. */
  received: Map<bigint, Buffer[]>;
  log: LogCapture;
}

export async function startMember(
  id: bigint,
  opts: Partial<PeerTransportOptions> = {},
  handlers: Partial<PeerHandlers> = {},
): Promise<Member> {
  const received = new Map<bigint, Buffer[]>();
  const log = captureLog();
  const t = new PeerTransport(
    { clusterId: CLUSTER_ID, memberId: id, listenUrls: ['http://127.0.0.1:0'], logger: log.logger, ...FAST, ...opts },
    {
      onMessage(from, message) {
        let list = received.get(from);
        if (list === undefined) received.set(from, (list = []));
        list.push(Buffer.from(message));
      },
      onSnapshot: handlers.onSnapshot ?? (() => Promise.reject(new Error('no snapshots expected'))),
      ...(handlers.onMessage !== undefined ? { onMessage: handlers.onMessage } : {}),
    },
  );
  const { listening } = await t.start();
  return { id, t, url: listening[0]!.url, urls: listening.map((l) => l.url), received, log };
}

export function seqMessage(seq: number, bytes = 8): Uint8Array {
  const m = Buffer.alloc(Math.max(4, bytes));
  m.writeUInt32BE(seq, 0);
  return m;
}

export function seqs(messages: Buffer[] | undefined): number[] {
  return (messages ?? []).map((m) => m.readUInt32BE(0));
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A TCP port that nothing listens on (it was free a moment ago). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
