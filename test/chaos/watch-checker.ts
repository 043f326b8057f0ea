/**
 * Watch checker: compares what each watcher received with a reference history of the key
 * space (every event, in revision order: e.g. a watch from revision 1 opened on each member
 * once the run is over), and the acknowledged writes of a history with that reference.
 *
 * Per watcher: revisions never go backwards (several events share a revision only for a
 * multi-key txn, and then on distinct keys), no event twice, no event the reference lacks,
 * none of the reference's events missing between the watcher's start revision and the end
 * (or the last revision it saw, when it is not expected to have caught up), and every
 * event identical (type, value) to the reference's. Across members: the references must be
 * identical.
 */
import type { Operation } from './checker';

export interface WatchEvent {
  revision: number;
  key: string;
  type: 'PUT' | 'DELETE';
  /** PUT: the value; DELETE: ''. */
  value: string;
}

export interface WatcherLog {
  name: string;
  /** First revision asked for (1 = the whole history). */
  startRevision: number;
  /** Everything received, across reconnects, in arrival order. */
  events: WatchEvent[];
  /**
   * The watcher is known to have caught up with the end of the reference (so a missing
   * tail is a gap). When false, only events up to the last revision it saw are required.
   */
  caughtUp: boolean;
  /** Which reference (member) to check against; default the first. */
  member?: string;
}

export interface WatchViolation {
  watcher: string;
  kind: 'out-of-order' | 'duplicate' | 'gap' | 'phantom' | 'mismatch' | 'divergent-members' | 'bad-reference';
  detail: string;
}

export interface WatchCheckResult {
  ok: boolean;
  violations: WatchViolation[];
  /** Events checked per watcher. */
  counts: Record<string, number>;
}

const evKey = (e: WatchEvent): string => `${e.revision}\u0000${e.key}`;
const show = (e: WatchEvent): string => `${e.type} ${JSON.stringify(e.key)}${e.type === 'PUT' ? `=${JSON.stringify(e.value)}` : ''} @${e.revision}`;

/** The reference itself must be ordered and duplicate-free. */
export function checkReference(name: string, ref: WatchEvent[]): WatchViolation[] {
  const out: WatchViolation[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < ref.length; i++) {
    const e = ref[i];
    if (i > 0 && e.revision < ref[i - 1].revision) out.push({ watcher: name, kind: 'bad-reference', detail: `revision goes back: ${show(ref[i - 1])} then ${show(e)}` });
    if (seen.has(evKey(e))) out.push({ watcher: name, kind: 'bad-reference', detail: `duplicate event ${show(e)}` });
    seen.add(evKey(e));
  }
  return out;
}

/** Every member's full history must be the same sequence of events. */
export function compareReferences(refs: Record<string, WatchEvent[]>): WatchViolation[] {
  const names = Object.keys(refs);
  const out: WatchViolation[] = [];
  if (names.length === 0) return out;
  const base = refs[names[0]];
  for (const n of names.slice(1)) {
    const other = refs[n];
    const len = Math.max(base.length, other.length);
    for (let i = 0; i < len; i++) {
      const a = base[i];
      const b = other[i];
      if (a === undefined || b === undefined || evKey(a) !== evKey(b) || a.type !== b.type || a.value !== b.value) {
        out.push({
          watcher: n,
          kind: 'divergent-members',
          detail: `history of ${n} differs from ${names[0]} at event #${i}: ${b ? show(b) : '(none)'} vs ${a ? show(a) : '(none)'} (lengths ${other.length} / ${base.length})`,
        });
        break;
      }
    }
  }
  return out;
}

/** Check one watcher against the reference. */
export function checkWatcher(w: WatcherLog, ref: WatchEvent[], maxPerKind = 5): WatchViolation[] {
  const out: WatchViolation[] = [];
  const perKind = new Map<string, number>();
  const add = (kind: WatchViolation['kind'], detail: string): void => {
    const n = (perKind.get(kind) ?? 0) + 1;
    perKind.set(kind, n);
    if (n <= maxPerKind) out.push({ watcher: w.name, kind, detail });
    else if (n === maxPerKind + 1) out.push({ watcher: w.name, kind, detail: '(more of this kind omitted)' });
  };
  // Order and duplicates, in arrival order.
  const seen = new Set<string>();
  let last: WatchEvent | null = null;
  let lastRev = 0;
  for (const e of w.events) {
    if (seen.has(evKey(e))) add('duplicate', `received twice: ${show(e)}`);
    else if (last !== null && e.revision < last.revision) add('out-of-order', `${show(e)} after ${show(last)}`);
    if (e.revision < w.startRevision) add('phantom', `${show(e)} is before the start revision ${w.startRevision}`);
    seen.add(evKey(e));
    last = e;
    lastRev = Math.max(lastRev, e.revision);
  }
  // Against the reference: same set of (revision, key), same contents.
  const refByKey = new Map<string, WatchEvent>();
  for (const e of ref) refByKey.set(evKey(e), e);
  const got = new Map<string, WatchEvent>();
  for (const e of w.events) if (!got.has(evKey(e))) got.set(evKey(e), e);
  for (const e of got.values()) {
    const r = refByKey.get(evKey(e));
    if (r === undefined) add('phantom', `not in the reference: ${show(e)}`);
    else if (r.type !== e.type || r.value !== e.value) add('mismatch', `received ${show(e)}, reference has ${show(r)}`);
  }
  const upTo = w.caughtUp ? Number.POSITIVE_INFINITY : lastRev;
  for (const r of ref) {
    if (r.revision < w.startRevision || r.revision > upTo) continue;
    if (!got.has(evKey(r))) add('gap', `missing ${show(r)}${w.caughtUp ? '' : ` (watcher saw up to @${lastRev})`}`);
  }
  return out;
}

/** Check every watcher; `refs` holds each member's full history (all must agree). */
export function checkWatches(watchers: WatcherLog[], refs: Record<string, WatchEvent[]>): WatchCheckResult {
  const violations: WatchViolation[] = [];
  for (const [n, r] of Object.entries(refs)) violations.push(...checkReference(n, r));
  violations.push(...compareReferences(refs));
  const names = Object.keys(refs);
  const counts: Record<string, number> = {};
  for (const w of watchers) {
    const ref = refs[w.member ?? names[0]] ?? [];
    violations.push(...checkWatcher(w, ref));
    counts[w.name] = w.events.length;
  }
  return { ok: violations.length === 0, violations, counts };
}

// -------------------------------------------------------------------------------------
// Acknowledged writes against the reference history

export interface AckCheckResult {
  ok: boolean;
  /** Acknowledged writes (write / successful cas) checked. */
  acknowledged: number;
  /** Acknowledged writes missing from the history at their revision. */
  lost: string[];
  /** Values in the history no operation wrote, or written once but present twice. */
  phantoms: string[];
  duplicates: string[];
  /** Keys whose final value (read at the end) is not the history's last event for the key. */
  finalMismatches: string[];
}

/**
 * `ops`: the operations of the run (checker.toOperations), with the revision each
 * acknowledged write reported. `finalValues`: a read of every key after the run (null =
 * absent). Every acknowledged write must be in the reference at its revision (so it is
 * present or superseded by later events), every value in the reference must come from an
 * invoked write and appear once, and the final value of each key must be the reference's
 * last.
 */
export function checkAcknowledgedWrites(
  ops: Operation[],
  ref: WatchEvent[],
  finalValues: Record<string, string | null>,
  /** Every write/cas invoked (including ones dropped as definite failures); default: from ops. */
  invoked: Array<{ key: string; value: string }> = ops.filter((o) => o.op === 'write' || o.op === 'cas').map((o) => ({ key: o.key, value: o.value! })),
): AckCheckResult {
  const byRevKey = new Map<string, WatchEvent>();
  for (const e of ref) byRevKey.set(evKey(e), e);
  const lost: string[] = [];
  let acknowledged = 0;
  for (const o of ops) {
    if (o.outcome !== 'ok') continue;
    if (o.op === 'write' || o.op === 'cas') {
      acknowledged++;
      const e = o.revision === undefined ? undefined : byRevKey.get(`${o.revision}\u0000${o.key}`);
      if (e === undefined || e.type !== 'PUT' || e.value !== o.value) {
        const inRef = ref.find((x) => x.key === o.key && x.type === 'PUT' && x.value === o.value);
        lost.push(
          `${o.op} ${JSON.stringify(o.key)}=${JSON.stringify(o.value)} acknowledged at revision ${o.revision ?? '?'} by p${o.process}: ` +
            (inRef ? `in the history at @${inRef.revision} instead` : e ? `the history has ${show(e)} there` : 'not in the history'),
        );
      }
    }
    if (o.op === 'delete' && o.deleted === 1 && o.revision !== undefined) {
      const e = byRevKey.get(`${o.revision}\u0000${o.key}`);
      if (e === undefined || e.type !== 'DELETE') lost.push(`delete ${JSON.stringify(o.key)} acknowledged at revision ${o.revision}: ${e ? `the history has ${show(e)}` : 'not in the history'}`);
    }
  }
  const invokedSet = new Set(invoked.map((w) => `${w.key}\u0000${w.value}`));
  const phantoms: string[] = [];
  const duplicates: string[] = [];
  const count = new Map<string, WatchEvent[]>();
  for (const e of ref) {
    if (e.type !== 'PUT') continue;
    const k = `${e.key}\u0000${e.value}`;
    if (!invokedSet.has(k)) phantoms.push(show(e));
    const l = count.get(k) ?? [];
    l.push(e);
    count.set(k, l);
  }
  for (const l of count.values()) if (l.length > 1) duplicates.push(`written once, applied ${l.length} times: ${l.map(show).join(', ')}`);
  const finalMismatches: string[] = [];
  const lastByKey = new Map<string, WatchEvent>();
  for (const e of ref) lastByKey.set(e.key, e);
  for (const [key, v] of Object.entries(finalValues)) {
    const e = lastByKey.get(key);
    const expected = e === undefined || e.type === 'DELETE' ? null : e.value;
    if (expected !== v) finalMismatches.push(`${JSON.stringify(key)}: final read ${JSON.stringify(v)}, history ends with ${e ? show(e) : '(no event)'}`);
  }
  return {
    ok: lost.length === 0 && phantoms.length === 0 && duplicates.length === 0 && finalMismatches.length === 0,
    acknowledged,
    lost,
    phantoms,
    duplicates,
    finalMismatches,
  };
}
