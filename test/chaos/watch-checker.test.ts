import { describe, expect, it } from 'vitest';
import { toOperations, type HistoryEvent } from './checker';
import { checkAcknowledgedWrites, checkWatcher, checkWatches, compareReferences, type WatchEvent, type WatcherLog } from './watch-checker';

const put = (revision: number, key: string, value: string): WatchEvent => ({ revision, key, type: 'PUT', value });
const del = (revision: number, key: string): WatchEvent => ({ revision, key, type: 'DELETE', value: '' });

const REF: WatchEvent[] = [put(2, 'a', 'a1'), put(3, 'b', 'b1'), del(4, 'a'), put(5, 'a', 'a2'), put(6, 'b', 'b2')];
const w = (events: WatchEvent[], o: Partial<WatcherLog> = {}): WatcherLog => ({ name: 'w', startRevision: 1, events, caughtUp: true, ...o });
const kinds = (v: Array<{ kind: string }>): string[] => v.map((x) => x.kind);

describe('watch checker', () => {
  it('accepts a watcher that saw exactly the history, from the start or from a later revision', () => {
    expect(checkWatcher(w(REF), REF)).toEqual([]);
    expect(checkWatcher(w(REF.slice(2), { startRevision: 4 }), REF)).toEqual([]);
    // Not caught up: a missing tail is fine, a missing middle is not.
    expect(checkWatcher(w(REF.slice(0, 3), { caughtUp: false }), REF)).toEqual([]);
    const r = checkWatches([w(REF, { name: 'a' }), w(REF.slice(1), { name: 'b', startRevision: 3 })], { m1: REF, m2: [...REF] });
    expect(r.ok).toBe(true);
    expect(r.counts).toEqual({ a: 5, b: 4 });
  });

  it('accepts several events of one revision on distinct keys (a multi-key txn)', () => {
    const ref = [put(2, 'a', '1'), put(3, 'a', '2'), put(3, 'b', '2')];
    expect(checkWatcher(w(ref), ref)).toEqual([]);
  });

  it('catches a gap', () => {
    const v = checkWatcher(w([REF[0], REF[1], REF[3], REF[4]]), REF);
    expect(kinds(v)).toEqual(['gap']);
    expect(v[0].detail).toContain('DELETE "a" @4');
    // The tail of a watcher that should have caught up.
    expect(kinds(checkWatcher(w(REF.slice(0, 4)), REF))).toEqual(['gap']);
    // A watcher resumed from the wrong revision after a reconnect.
    expect(kinds(checkWatcher(w([...REF.slice(0, 2), ...REF.slice(3)]), REF))).toEqual(['gap']);
  });

  it('catches duplicates (a reconnect that resumed one revision too early)', () => {
    const v = checkWatcher(w([...REF.slice(0, 3), REF[2], ...REF.slice(3)]), REF);
    expect(kinds(v)).toEqual(['duplicate']);
  });

  it('catches revisions going backwards', () => {
    expect(kinds(checkWatcher(w([REF[0], REF[2], REF[1], REF[3], REF[4]]), REF))).toEqual(['out-of-order']);
  });

  it('catches events the reference does not have, or has with other contents', () => {
    expect(kinds(checkWatcher(w([...REF, put(7, 'c', 'x')]), REF))).toEqual(['phantom']);
    expect(kinds(checkWatcher(w([REF[0], put(3, 'b', 'WRONG'), ...REF.slice(2)]), REF))).toEqual(['mismatch']);
    expect(kinds(checkWatcher(w([put(1, 'z', 'old'), ...REF.slice(1)], { startRevision: 3 }), REF))).toContain('phantom');
  });

  it('catches members whose histories differ', () => {
    expect(compareReferences({ m1: REF, m2: REF.slice(0, 4) })).toHaveLength(1);
    const other = [...REF];
    other[1] = put(3, 'b', 'different');
    const v = compareReferences({ m1: REF, m2: REF, m3: other });
    expect(v.map((x) => [x.watcher, x.kind])).toEqual([['m3', 'divergent-members']]);
    expect(checkWatches([], { m1: REF, m3: other }).ok).toBe(false);
    expect(checkWatches([], { m1: [REF[1], REF[0]] }).violations.map((x) => x.kind)).toEqual(['bad-reference']);
  });
});

describe('acknowledged-write check', () => {
  let t = 0;
  const ev = (type: HistoryEvent['type'], process: number, op: HistoryEvent['op'], key: string, extra: Partial<HistoryEvent> = {}): HistoryEvent => ({
    type,
    process,
    op,
    key,
    time: ++t,
    ...extra,
  });
  const history: HistoryEvent[] = [
    ev('invoke', 0, 'write', 'a', { value: 'a1' }),
    ev('ok', 0, 'write', 'a', { revision: 2 }),
    ev('invoke', 0, 'write', 'b', { value: 'b1' }),
    ev('ok', 0, 'write', 'b', { revision: 3 }),
    ev('invoke', 1, 'delete', 'a'),
    ev('ok', 1, 'delete', 'a', { value: 1, revision: 4 }),
    ev('invoke', 1, 'cas', 'a', { value: 'a2', expected: { modRevision: 0 } }),
    ev('ok', 1, 'cas', 'a', { revision: 5 }),
    ev('invoke', 2, 'write', 'b', { value: 'b2' }), // unknown outcome; it did apply
  ];
  const ops = toOperations(history);

  it('passes when every acknowledged write is in the history and the final values match', () => {
    const r = checkAcknowledgedWrites(ops, REF.slice(0, 5), { a: 'a2', b: 'b2' });
    expect(r).toMatchObject({ ok: true, acknowledged: 3, lost: [], phantoms: [], duplicates: [], finalMismatches: [] });
  });

  it('catches a lost acknowledged write and a lost delete', () => {
    const r = checkAcknowledgedWrites(ops, [REF[0], REF[3], REF[4]], { a: 'a2', b: 'b2' });
    expect(r.ok).toBe(false);
    expect(r.lost).toHaveLength(2);
    expect(r.lost[0]).toContain('"b"="b1" acknowledged at revision 3');
    expect(r.lost[1]).toContain('delete "a"');
  });

  it('catches a write at another revision than acknowledged, a phantom and a double apply', () => {
    const moved = checkAcknowledgedWrites(ops, [put(2, 'a', 'a1'), put(4, 'b', 'b1'), del(5, 'a'), put(6, 'a', 'a2')], { a: 'a2', b: 'b1' });
    expect(moved.lost.join('\n')).toContain('in the history at @4 instead');
    const phantom = checkAcknowledgedWrites(ops, [...REF, put(7, 'b', 'never-written')], { a: 'a2', b: 'never-written' });
    expect(phantom.phantoms).toEqual(['PUT "b"="never-written" @7']);
    const twice = checkAcknowledgedWrites(ops, [...REF, put(7, 'a', 'a1')], { a: 'a1', b: 'b2' });
    expect(twice.duplicates).toHaveLength(1);
    expect(twice.ok).toBe(false);
  });

  it('catches a final value that is not the last event of the key', () => {
    const r = checkAcknowledgedWrites(ops, REF, { a: 'a1', b: 'b2' });
    expect(r.finalMismatches).toEqual(['"a": final read "a1", history ends with PUT "a"="a2" @5']);
  });
});
