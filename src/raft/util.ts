import type { Entry } from './types';

/** Unlimited size: pass as maxSize to read everything. */
export const noLimit = Number.MAX_SAFE_INTEGER;

/** Fixed per-entry overhead counted against size limits (term, index, type, length prefix). */
export const entryOverheadBytes = 21;

export function entrySize(e: Entry): number {
  return e.data.byteLength + entryOverheadBytes;
}

/** Bytes of application payload, counted against maxUncommittedEntriesSize. */
export function payloadSize(e: Entry): number {
  return e.data.byteLength;
}

/**
 * The longest prefix of `ents` whose total size is at most maxSize, but always at
 * least one entry so that an oversized entry can still make progress.
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySize(ents[limit]);
    if (size > maxSize) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}
