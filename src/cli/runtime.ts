/**
 * cairnctl's process plumbing: etcdctl's exit codes, "Error: ..." exits, synchronous
 * byte-exact output, and the client-side warning lines etcdctl's gRPC retry
 * interceptor logs for every failed unary call.
 */
import { randomUUID } from 'node:crypto';
import { EtcdError } from '../client';

/** etcdctl's exit codes (etcdctl/ctlv3/command/error.go). */
export const Exit = {
  Success: 0,
  Error: 1,
  BadConnection: 2,
  InvalidInput: 3,
  BadFeature: 4,
  Interrupted: 5,
  IO: 6,
  BadArgs: 128,
} as const;

/** Thrown to end the command with an exit code (stderr already written). */
export class CliExit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export function out(s: string | Buffer): void {
  process.stdout.write(s);
}

export function err(s: string | Buffer): void {
  process.stderr.write(s);
}

/**
 * Colour, only for a human at a terminal: never when the stream is a pipe or a file (so
 * scripts and the golden tests see etcdctl's bytes), and never with NO_COLOR set.
 */
export type Colour = 'red' | 'green' | 'yellow';
const SGR: Record<Colour, string> = { red: '31', green: '32', yellow: '33' };

export function paint(stream: NodeJS.WriteStream, colour: Colour, text: string): string {
  if (stream.isTTY !== true || (process.env.NO_COLOR ?? '') !== '') return text;
  return `\x1b[${SGR[colour]}m${text}\x1b[0m`;
}

/** "Error:" as etcdctl prints it, red on a terminal. */
export function errorLabel(): string {
  return paint(process.stderr, 'red', 'Error:');
}

/** etcdctl's ExitWithError: "Error: <msg>" on stderr, then exit. */
export function exitWithError(code: number, msg: string): never {
  err(`${errorLabel()} ${msg}\n`);
  throw new CliExit(code);
}

const GO_CODES = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];

export function goCodeName(code: number): string {
  return GO_CODES[code] ?? `Code(${code})`;
}

const clientId = randomUUID();

/** True when the error means no server could be reached in time. */
export function isConnectionError(e: unknown): boolean {
  if (!(e instanceof EtcdError)) return false;
  if (e.name === 'ConnectFailedError') return true;
  return (e.code === 4 || e.code === 14) && !e.details.startsWith('etcdserver:');
}

/** The zap line of clientv3/retry_interceptor.go:62 for one failed unary attempt. */
export function retryWarning(target: string, e: unknown): void {
  const detail = isConnectionError(e)
    ? 'rpc error: code = DeadlineExceeded desc = latest balancer error: all SubConns are in TransientFailure'
    : e instanceof EtcdError
      ? `rpc error: code = ${goCodeName(e.code)} desc = ${e.details}`
      : String(e);
  const line = {
    level: 'warn',
    ts: new Date().toISOString(),
    caller: 'clientv3/retry_interceptor.go:62',
    msg: 'retrying of unary invoker failed',
    target: `endpoint://client-${clientId}/${target}`,
    attempt: 0,
    error: detail,
  };
  err(JSON.stringify(line) + '\n');
}

/** The message etcdctl prints for a failed call ("context deadline exceeded" when unreachable). */
export function errorText(e: unknown): string {
  if (isConnectionError(e)) return 'context deadline exceeded';
  if (e instanceof EtcdError) return e.details;
  return e instanceof Error ? e.message : String(e);
}
