import type { Client } from '../client';
import type { KeyValue, ResponseHeader } from '../convert';
import { abortError } from '../pool';
import { ErrLostWatcher } from './errors';

// etcd's concurrency/key.go: waiting for keys to be deleted, in etcd's exact sequence
// (Range with max_create_revision sorted by create revision descending, limit 1, then a
// watch on that one key from the Range's revision until a DELETE, then again).

/** Rejects with `reason` when the signal aborts; returns a function that detaches the listener. */
function onAbort(signal: AbortSignal | undefined, fn: () => void): () => void {
  if (!signal) return () => undefined;
  if (signal.aborted) {
    fn();
    return () => undefined;
  }
  signal.addEventListener('abort', fn, { once: true });
  return () => signal.removeEventListener('abort', fn);
}

/** Wait until `key` is deleted at or after revision `rev` (etcd's waitDelete). */
export async function waitDelete(client: Client, key: Buffer, rev: number, signal?: AbortSignal, stop?: Promise<unknown>): Promise<void> {
  if (signal?.aborted) throw abortError(signal);
  const w = client.watch({ key, startRevision: rev });
  let aborted = false;
  const detach = onAbort(signal, () => {
    aborted = true;
    void w.cancel();
  });
  let stopped = false;
  void stop?.then(() => {
    stopped = true;
    void w.cancel();
  });
  try {
    for await (const batch of w) {
      if (batch.events.some((e) => e.type === 'delete')) return;
    }
  } catch (e) {
    if (aborted && signal) throw abortError(signal);
    throw e;
  } finally {
    detach();
    void w.cancel();
  }
  if (aborted && signal) throw abortError(signal);
  if (stopped) return; // the caller re-checks why
  throw new ErrLostWatcher();
}

/**
 * Wait until every key with prefix `pfx` whose create revision is <= maxCreateRev is
 * deleted (etcd's waitDeletes). Returns early, without error, when `stop` resolves (the
 * caller must then check its own state).
 */
export async function waitDeletes(client: Client, pfx: Buffer, maxCreateRev: number, signal?: AbortSignal, stop?: Promise<unknown>): Promise<void> {
  let stopped = false;
  void stop?.then(() => (stopped = true));
  for (;;) {
    if (signal?.aborted) throw abortError(signal);
    if (stopped) return;
    const r = await client.get(
      { key: pfx, prefix: true, sort: { target: 'create', order: 'descend' }, limit: 1, maxCreateRevision: maxCreateRev },
      { signal },
    );
    if (r.kvs.length === 0) return;
    await waitDelete(client, r.kvs[0].key, r.header.revision, signal, stop);
  }
}

/** The first key (lowest create revision) under a prefix: etcd's Get(pfx, WithFirstCreate()). */
export async function firstCreated(client: Client, pfx: Buffer, signal?: AbortSignal): Promise<{ kv: KeyValue | null; header: ResponseHeader }> {
  const r = await client.get({ key: pfx, prefix: true, sort: { target: 'create', order: 'ascend' }, limit: 1 }, { signal });
  return { kv: r.kvs[0] ?? null, header: r.header };
}
