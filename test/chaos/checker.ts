/**
 * Linearizability checker for per-key registers (read / write / cas / delete), in the style
 * of Wing & Gong's search with Lowe's memoisation, as implemented by Porcupine:
 *
 * - the history is partitioned by key (a register per key is P-compositional), and each
 *   partition is checked on its own;
 * - the calls and returns of a partition are laid out in time order as a doubly linked list;
 *   a depth-first search repeatedly picks a call whose operation can be linearized next
 *   (every call before the first pending return is a candidate), applies the model, and
 *   lifts the call/return pair out of the list; when it meets a return whose call has not
 *   been linearized it backtracks;
 * - visited (set of linearized operations, model state) pairs are cached, so each is
 *   explored once;
 * - the model is nondeterministic (an operation of unknown outcome may or may not have
 *   taken effect, and its new mod revision is unknown), handled as Porcupine does: the
 *   search state is the set of possible model states (the power-set construction);
 * - operations of unknown outcome ('info') get a return time after every other event,
 *   so they may be linearized anywhere after their invocation (or, as a no-op, never);
 * - the search is bounded (steps and wall time); past the bound the verdict is 'unknown'.
 *
 * History format (JSON lines, see README.md): one event per line,
 *   {"type":"invoke"|"ok"|"fail"|"info", "process":n, "op":"read"|"write"|"cas"|"delete",
 *    "key":"k", "value":..., "expected":..., "revision":n, "time":ns}
 */

export type EventType = 'invoke' | 'ok' | 'fail' | 'info';
export type OpName = 'read' | 'write' | 'cas' | 'delete';

/** What a cas compares: a mod revision (0 = the key does not exist) or a value. */
export type Expected = { modRevision: number } | { value: string };

export interface HistoryEvent {
  type: EventType;
  process: number;
  op: OpName;
  key: string;
  /**
   * invoke write/cas: the value written. ok read: the value read (null = no such key).
   * ok delete: the number of keys deleted (0 or 1; optional).
   */
  value?: string | number | null;
  /** invoke cas: the comparison (a bare string means {value: string}). */
  expected?: Expected | string;
  /**
   * ok read: the mod revision of the value read (optional). ok write / cas: the revision of
   * the write (the response header's revision; optional).
   */
  revision?: number;
  /** Monotonic time in ns (process.hrtime). */
  time: number;
  /** fail with an error: the operation definitely did not take effect (also for cas). */
  error?: string;
}

/** One operation: an invocation paired with its completion. */
export interface Operation {
  id: number;
  process: number;
  op: OpName;
  key: string;
  /** write/cas: the new value. */
  value?: string;
  expected?: Expected;
  /** 'ok', 'fail' (cas: the comparison was false) or 'info' (unknown outcome). */
  outcome: 'ok' | 'fail' | 'info';
  /** read: the value read. */
  readValue?: string | null;
  /** read: mod revision read; write/cas ok: revision of the write. */
  revision?: number;
  /** delete ok: number of keys deleted, when known. */
  deleted?: number;
  call: number;
  ret: number;
}

// -------------------------------------------------------------------------------------
// The register model. A state is the value (null = absent) and its mod revision
// (0 when absent; -1 = unknown, after a write whose revision we never learnt).

interface RegState {
  v: string | null;
  rev: number;
}
const UNKNOWN_REV = -1;
const INITIAL: RegState = { v: null, rev: 0 };

function stateKey(s: RegState): string {
  return s.v === null ? `\u0000${s.rev}` : `${s.rev}\u0001${s.v}`;
}

/** Can the comparison be true / false in state s? */
function compareOutcomes(s: RegState, e: Expected): { canTrue: boolean; canFalse: boolean } {
  if ('value' in e) {
    const t = s.v !== null && s.v === e.value;
    return { canTrue: t, canFalse: !t };
  }
  if (s.rev === UNKNOWN_REV) {
    // The key exists (only writes leave an unknown revision) with a revision we never saw.
    return { canTrue: e.modRevision > 0, canFalse: true };
  }
  const t = s.rev === e.modRevision;
  return { canTrue: t, canFalse: !t };
}

/** A later write's revision must exceed the current one (revisions strictly increase). */
function revAfter(s: RegState, r: number | undefined): boolean {
  return r === undefined || s.rev === UNKNOWN_REV || r > s.rev;
}

/** All states the model can be in after applying `op` in state `s` ([] = impossible). */
function step(s: RegState, op: Operation): RegState[] {
  switch (op.op) {
    case 'read': {
      if (op.outcome !== 'ok') return [s];
      if (s.v !== (op.readValue ?? null)) return [];
      if (op.revision === undefined || op.readValue === null) return [s];
      if (s.rev === UNKNOWN_REV) return [{ v: s.v, rev: op.revision }];
      return s.rev === op.revision ? [s] : [];
    }
    case 'write': {
      if (op.outcome === 'ok') {
        if (!revAfter(s, op.revision)) return [];
        return [{ v: op.value!, rev: op.revision ?? UNKNOWN_REV }];
      }
      return [s, { v: op.value!, rev: UNKNOWN_REV }]; // info: did or did not happen
    }
    case 'cas': {
      const c = compareOutcomes(s, op.expected!);
      if (op.outcome === 'ok') {
        if (!c.canTrue || !revAfter(s, op.revision)) return [];
        return [{ v: op.value!, rev: op.revision ?? UNKNOWN_REV }];
      }
      if (op.outcome === 'fail') return c.canFalse ? [s] : [];
      const out = [s];
      if (c.canTrue) out.push({ v: op.value!, rev: UNKNOWN_REV });
      return out;
    }
    case 'delete': {
      if (op.outcome === 'ok') {
        if (op.deleted !== undefined && (op.deleted > 0) !== (s.v !== null)) return [];
        return [INITIAL];
      }
      return [s, INITIAL];
    }
  }
}

/** Power-set step: the union of the successors of every state; dedup by key. */
function stepSet(states: RegState[], op: Operation): RegState[] {
  const out = new Map<string, RegState>();
  for (const s of states) for (const n of step(s, op)) out.set(stateKey(n), n);
  return [...out.values()];
}

function setKey(states: RegState[]): string {
  return states.map(stateKey).sort().join('\u0002');
}

// -------------------------------------------------------------------------------------
// History parsing

export function parseHistory(text: string): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t !== '') out.push(JSON.parse(t) as HistoryEvent);
  }
  return out;
}

function normExpected(e: Expected | string | undefined): Expected | undefined {
  if (e === undefined) return undefined;
  if (typeof e === 'string') return { value: e };
  return e;
}

/**
 * Pair invocations with completions (per process, one outstanding operation at a time).
 * Invocations without a completion are of unknown outcome. 'fail' reads/writes/deletes,
 * and any 'fail' carrying `error`, did not happen and are dropped.
 */
export function toOperations(events: HistoryEvent[]): Operation[] {
  const open = new Map<number, { ev: HistoryEvent; idx: number }>();
  const ops: Operation[] = [];
  let maxTime = 0;
  const finish = (inv: HistoryEvent, done: HistoryEvent | null): void => {
    const type = done === null ? 'info' : done.type;
    if (type === 'fail' && (inv.op !== 'cas' || done?.error !== undefined)) return;
    const op: Operation = {
      id: ops.length,
      process: inv.process,
      op: inv.op,
      key: inv.key,
      outcome: type === 'ok' ? 'ok' : type === 'fail' ? 'fail' : 'info',
      call: inv.time,
      ret: type === 'info' ? Number.POSITIVE_INFINITY : done!.time,
    };
    if (inv.op === 'write' || inv.op === 'cas') op.value = String(inv.value);
    if (inv.op === 'cas') {
      op.expected = normExpected(inv.expected);
      if (op.expected === undefined) throw new Error(`cas without expected: ${JSON.stringify(inv)}`);
    }
    if (done !== null && type === 'ok') {
      if (inv.op === 'read') op.readValue = done.value === undefined || done.value === null ? null : String(done.value);
      if (inv.op === 'delete' && typeof done.value === 'number') op.deleted = done.value;
      if (typeof done.revision === 'number') op.revision = done.revision;
    }
    if (op.outcome === 'info' && op.op === 'read') return; // a read of unknown outcome says nothing
    ops.push(op);
  };
  for (const ev of events) {
    maxTime = Math.max(maxTime, ev.time);
    if (ev.type === 'invoke') {
      const prev = open.get(ev.process);
      if (prev) throw new Error(`process ${ev.process} invoked twice without completion (at ${prev.ev.time} and ${ev.time})`);
      open.set(ev.process, { ev, idx: ops.length });
    } else {
      const inv = open.get(ev.process);
      if (!inv) throw new Error(`completion without invocation: ${JSON.stringify(ev)}`);
      open.delete(ev.process);
      if (inv.ev.op !== ev.op || inv.ev.key !== ev.key) throw new Error(`completion does not match invocation: ${JSON.stringify(inv.ev)} / ${JSON.stringify(ev)}`);
      finish(inv.ev, ev.type === 'info' ? null : ev);
    }
  }
  for (const { ev } of open.values()) finish(ev, null);
  ops.forEach((o, i) => (o.id = i));
  return ops;
}

// -------------------------------------------------------------------------------------
// The search (one key)

export interface CheckOptions {
  /** Max search steps per key (default 2,000,000). */
  maxSteps?: number;
  /** Wall-clock budget in ms per key (default 60 s). */
  timeoutMs?: number;
}

export type Verdict = 'ok' | 'violation' | 'unknown';

export interface KeyResult {
  key: string;
  verdict: Verdict;
  operations: number;
  steps: number;
  /** violation: the operation whose completion could never be reached, with context. */
  explanation?: string;
  /**
   * violation: the time window (history `time`, ns) around the offending operation, from
   * the earliest call among the last linearized operations and the concurrent ones to its
   * completion: where to cut the history excerpt.
   */
  window?: { from: number; to: number };
}

export interface CheckResult {
  verdict: Verdict;
  keys: KeyResult[];
}

interface Entry {
  kind: 'call' | 'ret';
  op: Operation;
  time: number;
  match: Entry | null; // call -> its return
  prev: Entry | null;
  next: Entry | null;
}

function buildList(ops: Operation[]): Entry {
  const entries: Entry[] = [];
  for (const op of ops) {
    const call: Entry = { kind: 'call', op, time: op.call, match: null, prev: null, next: null };
    const ret: Entry = { kind: 'ret', op, time: op.ret, match: null, prev: null, next: null };
    call.match = ret;
    entries.push(call, ret);
  }
  // Time order; on ties, calls first (treating touching operations as concurrent is lenient).
  entries.sort((a, b) => a.time - b.time || (a.kind === b.kind ? a.op.id - b.op.id : a.kind === 'call' ? -1 : 1));
  const head: Entry = { kind: 'call', op: null as unknown as Operation, time: -Infinity, match: null, prev: null, next: null };
  let prev = head;
  for (const e of entries) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  return head;
}

function lift(call: Entry): void {
  call.prev!.next = call.next;
  call.next!.prev = call.prev;
  const ret = call.match!;
  ret.prev!.next = ret.next;
  if (ret.next) ret.next.prev = ret.prev;
}

function unlift(call: Entry): void {
  const ret = call.match!;
  ret.prev!.next = ret;
  if (ret.next) ret.next.prev = ret;
  call.prev!.next = call;
  call.next!.prev = call;
}

class Bits {
  readonly w: Uint32Array;
  constructor(n: number) {
    this.w = new Uint32Array((n + 31) >>> 5);
  }
  set(i: number): void {
    this.w[i >>> 5] |= 1 << (i & 31);
  }
  clear(i: number): void {
    this.w[i >>> 5] &= ~(1 << (i & 31));
  }
  key(): string {
    // Two UTF-16 code units per word keep cache keys short.
    let s = '';
    for (const x of this.w) s += String.fromCharCode(x & 0xffff, x >>> 16);
    return s;
  }
}

function describe(op: Operation, t0: number): string {
  const ms = (t: number): string => (Number.isFinite(t) ? ((t - t0) / 1e6).toFixed(3) : '∞');
  let what: string;
  switch (op.op) {
    case 'read':
      what = `read -> ${JSON.stringify(op.readValue)}${op.revision !== undefined ? ` @${op.revision}` : ''}`;
      break;
    case 'write':
      what = `write ${JSON.stringify(op.value)}${op.revision !== undefined ? ` @${op.revision}` : ''}`;
      break;
    case 'cas':
      what = `cas ${JSON.stringify(op.expected)} -> ${JSON.stringify(op.value)}${op.revision !== undefined ? ` @${op.revision}` : ''}`;
      break;
    case 'delete':
      what = `delete${op.deleted !== undefined ? ` (deleted ${op.deleted})` : ''}`;
      break;
  }
  return `p${op.process} ${what} [${op.outcome}] ${ms(op.call)}..${ms(op.ret)} ms`;
}

/** Check one key's operations. `deadline` is an absolute Date.now() bound. */
export function checkKeyOperations(key: string, ops: Operation[], opts: { maxSteps: number; deadline: number }): KeyResult {
  const local = ops.map((o, i) => ({ ...o, id: i }));
  if (local.length === 0) return { key, verdict: 'ok', operations: 0, steps: 0 };
  const head = buildList(local);
  const linearized = new Bits(local.length);
  const cache = new Set<string>();
  const calls: Array<{ entry: Entry; states: RegState[] }> = [];
  let states: RegState[] = [INITIAL];
  let entry: Entry | null = head.next;
  let steps = 0;
  // Best partial linearization, for the explanation.
  let bestDepth = -1;
  let bestStuck: Operation | null = null;
  let bestStates: RegState[] = [];
  let bestOrder: Operation[] = [];
  while (head.next !== null) {
    if (++steps > opts.maxSteps || ((steps & 0x3ff) === 0 && Date.now() > opts.deadline)) {
      return { key, verdict: 'unknown', operations: local.length, steps };
    }
    if (entry === null) throw new Error('internal: ran off the end of the history');
    if (entry.kind === 'call') {
      const next = stepSet(states, entry.op);
      if (next.length > 0) {
        linearized.set(entry.op.id);
        const k = linearized.key() + '|' + setKey(next);
        if (!cache.has(k)) {
          cache.add(k);
          calls.push({ entry, states });
          states = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized.clear(entry.op.id);
      }
      entry = entry.next;
    } else {
      // A return whose call is not linearized yet: nothing before it can be; backtrack.
      if (calls.length > bestDepth) {
        bestDepth = calls.length;
        bestStuck = entry.op;
        bestStates = states;
        bestOrder = calls.map((c) => c.entry.op);
      }
      const top = calls.pop();
      if (top === undefined) {
        const t0 = Math.min(...local.map((o) => o.call));
        const stuck = bestStuck!;
        const tail = bestOrder.slice(-8).map((o) => '    ' + describe(o, t0));
        const concurrent = local
          .filter((o) => o.call <= stuck.ret && o.ret >= stuck.call && o !== stuck && !bestOrder.includes(o))
          .slice(0, 12)
          .map((o) => '    ' + describe(o, t0));
        const explanation =
          `key ${JSON.stringify(key)}: no linearization; the longest linearizable prefix has ${bestDepth} of ${local.length} operations, ending with\n` +
          tail.join('\n') +
          `\n  then the model is in ${bestStates.map((s) => `{value: ${JSON.stringify(s.v)}, rev: ${s.rev === UNKNOWN_REV ? '?' : s.rev}}`).join(' or ')}` +
          ` and this operation cannot take effect before it completes:\n    ${describe(stuck, t0)}` +
          (concurrent.length ? `\n  other operations concurrent with it, not linearized:\n${concurrent.join('\n')}` : '');
        const around = [stuck, ...bestOrder.slice(-8), ...local.filter((o) => o.call <= stuck.ret && o.ret >= stuck.call)];
        const window = { from: Math.min(...around.map((o) => o.call)), to: Number.isFinite(stuck.ret) ? stuck.ret : Math.max(...around.map((o) => o.call)) };
        return { key, verdict: 'violation', operations: local.length, steps, explanation, window };
      }
      entry = top.entry;
      states = top.states;
      linearized.clear(entry.op.id);
      unlift(entry);
      entry = entry.next;
    }
  }
  return { key, verdict: 'ok', operations: local.length, steps };
}

/**
 * Operations of unknown outcome whose effect nobody ever observed (their value is never
 * read nor compared against) are the usual cause of search blow-up. Dropping an 'info'
 * operation means choosing "it never happened", which is one of its allowed outcomes: if
 * the reduced history is linearizable, so is the full one. So check the reduced histories
 * first and fall back to the full one only when they fail.
 */
function reductions(ops: Operation[]): Operation[][] {
  const infos = ops.filter((o) => o.outcome === 'info');
  if (infos.length === 0) return [ops];
  const observed = new Set<string>();
  for (const o of ops) {
    if (o.op === 'read' && o.outcome === 'ok' && o.readValue != null) observed.add(o.readValue);
    if (o.op === 'cas' && o.expected && 'value' in o.expected) observed.add(o.expected.value);
  }
  const noInfo = ops.filter((o) => o.outcome !== 'info');
  const observedOnly = ops.filter((o) => o.outcome !== 'info' || ((o.op === 'write' || o.op === 'cas') && observed.has(o.value!)));
  const out = [noInfo];
  if (observedOnly.length !== noInfo.length) out.push(observedOnly);
  if (observedOnly.length !== ops.length) out.push(ops);
  return out;
}

export function checkOperations(ops: Operation[], options: CheckOptions = {}): CheckResult {
  const maxSteps = options.maxSteps ?? 2_000_000;
  const byKey = new Map<string, Operation[]>();
  for (const o of ops) {
    let l = byKey.get(o.key);
    if (!l) byKey.set(o.key, (l = []));
    l.push(o);
  }
  const keys: KeyResult[] = [];
  for (const [key, kops] of [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    // Fast path: a read of a value no operation ever wrote to this key cannot be explained.
    const written = new Set(kops.filter((o) => o.op === 'write' || o.op === 'cas').map((o) => o.value!));
    const phantom = kops.find((o) => o.op === 'read' && o.outcome === 'ok' && o.readValue != null && !written.has(o.readValue));
    if (phantom) {
      const t0 = Math.min(...kops.map((o) => o.call));
      keys.push({ key, verdict: 'violation', operations: kops.length, steps: 0, explanation: `key ${JSON.stringify(key)}: read of a value never written to it:\n    ${describe(phantom, t0)}`, window: { from: phantom.call, to: phantom.ret } });
      continue;
    }
    // Only the last (full) history decides a violation; a reduced one can only prove 'ok'.
    let result: KeyResult | null = null;
    let steps = 0;
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (const reduced of reductions(kops)) {
      const r = checkKeyOperations(key, reduced, { maxSteps, deadline });
      steps += r.steps;
      result = { ...r, operations: kops.length, steps };
      if (r.verdict === 'ok') break;
    }
    keys.push(result!);
  }
  const verdict: Verdict = keys.some((k) => k.verdict === 'violation') ? 'violation' : keys.some((k) => k.verdict === 'unknown') ? 'unknown' : 'ok';
  return { verdict, keys };
}

export function checkHistory(events: HistoryEvent[], options: CheckOptions = {}): CheckResult {
  return checkOperations(toOperations(events), options);
}
