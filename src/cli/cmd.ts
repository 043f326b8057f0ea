/**
 * What every cairnctl command shares: the context (client, output format, timeouts),
 * the command table's shape, flag constructors, and etcdctl's way of running one
 * unary call (retry warning, "Error: ...", exit code).
 */
import { AuthFailedError, type Client } from '../client';
import type { FlagSet, FlagSpec } from './flags';
import type * as P from './printers';
import { CliExit, Exit, errorText, exitWithError, retryWarning } from './runtime';
import type { StdinReader } from './stdin';

export interface Ctx {
  display: P.Display;
  endpoints: string[];
  dialTimeoutMs: number;
  commandTimeoutMs: number;
  stdin: StdinReader;
  /** The client (created on first use). */
  client(): Client;
  /** A client of one endpoint. */
  clientFor(ep: string): Client;
  /** Another client of all the endpoints (its own connections). */
  newClient(): Client;
  /** The TLS files given with --cacert / --cert / --key (for plain HTTPS requests such as /metrics). */
  tlsFiles?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** host:port of the first endpoint (the retry warnings' target). */
  target: string;
}

export interface Command {
  name: string;
  short: string;
  usage: string;
  flags: FlagSpec[];
  /** Flags this command gives its subcommands too (cobra's persistent flags). */
  persistentFlags?: FlagSpec[];
  /** etcdctl's long description (the help's DESCRIPTION). */
  long?: string;
  sub?: Command[];
  /** Needs no client (version). */
  noClient?: boolean;
  run?: (ctx: Ctx, args: string[], f: FlagSet, dashArgs: string[] | null) => Promise<void>;
}

export const b = (name: string, usage: string, short?: string): FlagSpec => ({ name, short, kind: 'bool', default: 'false', usage });
export const s = (name: string, def: string, usage: string, short?: string): FlagSpec => ({ name, short, kind: 'string', default: def, usage });
export const i = (name: string, usage: string): FlagSpec => ({ name, kind: 'int', default: '0', usage });

/** Run a unary call as etcdctl does: on failure the retry warning, then "Error: ..." and exit 1. */
export async function call<T>(ctx: Ctx, fn: () => Promise<T>, wrap: (m: string) => string = (m) => m, code: number = Exit.Error): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof CliExit) throw e;
    retryWarning(ctx.target, e);
    // etcdctl authenticates while creating its client: a failure there is a connection failure.
    if (e instanceof AuthFailedError) return exitWithError(Exit.BadConnection, errorText(e));
    return exitWithError(code, wrap(errorText(e)));
  }
}

