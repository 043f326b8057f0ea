/**
 * lock and elect, as etcdctl 3.4 runs them (etcdctl/ctlv3/command/{lock,elect}_command.go)
 * on the client's concurrency recipes: same keys, same output, SIGINT / SIGTERM release.
 */
import { newElection, newMutex, newSession, type Session } from '../client';
import { call, type Command, type Ctx } from './cmd';
import { runCommand } from './exec';
import type { FlagSpec } from './flags';
import * as P from './printers';
import { Exit, errorText, exitWithError } from './runtime';

/** Resolves on the first SIGINT or SIGTERM (etcdctl's signal.Notify). */
function untilSignal(): { promise: Promise<void>; stop: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  const on = (): void => resolve();
  process.once('SIGINT', on);
  process.once('SIGTERM', on);
  return { promise, stop: () => (process.off('SIGINT', on), process.off('SIGTERM', on)) };
}

async function session(ctx: Ctx, ttl?: number): Promise<Session> {
  try {
    return await newSession(ctx.client(), ttl === undefined ? {} : { ttl });
  } catch (e) {
    return exitWithError(Exit.Error, errorText(e));
  }
}

async function lockCommand(ctx: Ctx, args: string[], ttl: number, cmdArgs: string[]): Promise<void> {
  if (args.length === 0) exitWithError(Exit.BadArgs, 'lock takes a lock name argument and an optional command to execute');
  const sig = untilSignal();
  const abort = new AbortController();
  void sig.promise.then(() => abort.abort());
  const s = await session(ctx, ttl);
  const m = newMutex(s, args[0]);
  try {
    await m.lock({ signal: abort.signal });
  } catch (e) {
    return exitWithError(Exit.Error, errorText(e));
  }
  const unlock = (): Promise<void> => call(ctx, () => m.unlock({ timeoutMs: ctx.commandTimeoutMs }));
  const key = m.key() ?? '';
  if (cmdArgs.length > 0) {
    const failed = await runCommand(cmdArgs, { ETCD_LOCK_KEY: key, ETCD_LOCK_REV: String(m.header()?.revision ?? 0) });
    await unlock();
    sig.stop();
    if (failed !== null) exitWithError(Exit.Error, failed);
    return;
  }
  const c = ctx.client();
  const r = await call(ctx, () => c.get(key));
  if (r.kvs.length === 0) exitWithError(Exit.Error, 'lock lost on init');
  P.printGet(ctx.display, r);
  const ended = await Promise.race([sig.promise.then(() => 'signal' as const), s.done.then(() => 'expired' as const)]);
  sig.stop();
  if (ended === 'expired') exitWithError(Exit.Error, 'session expired');
  await unlock();
}

async function campaign(ctx: Ctx, name: string, proposal: string): Promise<void> {
  const sig = untilSignal();
  const abort = new AbortController();
  void sig.promise.then(() => abort.abort());
  const s = await session(ctx);
  const e = newElection(s, name);
  try {
    await e.campaign(proposal, { signal: abort.signal });
  } catch (err) {
    return exitWithError(Exit.Error, errorText(err));
  }
  const c = ctx.client();
  const r = await call(ctx, () => c.get(e.key() ?? ''));
  P.printGet(ctx.display, r);
  const ended = await Promise.race([sig.promise.then(() => 'signal' as const), s.done.then(() => 'expired' as const)]);
  sig.stop();
  if (ended === 'expired') exitWithError(Exit.Error, 'elect: session expired');
  await call(ctx, () => e.resign({ timeoutMs: ctx.commandTimeoutMs }));
}

async function observe(ctx: Ctx, name: string): Promise<void> {
  const sig = untilSignal();
  const abort = new AbortController();
  void sig.promise.then(() => abort.abort());
  const s = await session(ctx);
  const e = newElection(s, name);
  try {
    for await (const o of e.observe({ signal: abort.signal })) {
      P.printGet(ctx.display, { header: o.header, kvs: [o.kv], more: false, count: 1 });
    }
  } catch (err) {
    if (!abort.signal.aborted) exitWithError(Exit.Error, errorText(err));
  }
  sig.stop();
  if (!abort.signal.aborted) exitWithError(Exit.Error, 'elect: observer lost');
}

const TTL_FLAG: FlagSpec = { name: 'ttl', kind: 'int', default: '10', usage: 'timeout for session' };

export const LOCK_COMMAND: Command = {
  name: 'lock',
  short: 'Acquires a named lock',
  usage: 'lock <lockname> [exec-command arg1 arg2 ...]',
  flags: [TTL_FLAG],
  run: (ctx, args, f, dash) => {
    // cobra passes the arguments after `--` on as ordinary ones.
    const all = [...args, ...(dash ?? [])];
    return lockCommand(ctx, all.slice(0, 1), f.num('ttl'), all.slice(1));
  },
};

export const ELECT_COMMAND: Command = {
  name: 'elect',
  short: 'Observes and participates in leader election',
  usage: 'elect <election-name> [proposal]',
  flags: [{ name: 'listen', short: 'l', kind: 'bool', default: 'false', usage: 'observation mode' }],
  run: async (ctx, args, f) => {
    if (args.length !== 1 && args.length !== 2) exitWithError(Exit.BadArgs, 'elect takes one election name argument and an optional proposal argument');
    if (args.length === 1) {
      if (!f.bool('listen')) exitWithError(Exit.BadArgs, 'no proposal argument but -l not set');
      return observe(ctx, args[0]);
    }
    if (f.bool('listen')) exitWithError(Exit.BadArgs, 'proposal given but -l is set');
    return campaign(ctx, args[0], args[1]);
  },
};
