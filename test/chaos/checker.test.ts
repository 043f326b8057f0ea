import { describe, expect, it } from 'vitest';
import { checkHistory, checkOperations, parseHistory, toOperations, type Expected, type HistoryEvent, type OpName } from './checker';
import { generateHistory } from './gen';
import { Rng, seedFromEnv } from './rng';

/** A tiny DSL: inv/ok/fail/info append events at increasing times unless a time is given. */
class H {
  readonly events: HistoryEvent[] = [];
  private t = 0;
  private at(time?: number): number {
    this.t = time ?? this.t + 10;
    return this.t;
  }
  inv(process: number, op: OpName, key: string, extra: { value?: string; expected?: Expected | string } = {}, time?: number): this {
    this.events.push({ type: 'invoke', process, op, key, ...extra, time: this.at(time) });
    return this;
  }
  ok(process: number, op: OpName, key: string, extra: { value?: string | number | null; revision?: number } = {}, time?: number): this {
    this.events.push({ type: 'ok', process, op, key, ...extra, time: this.at(time) });
    return this;
  }
  fail(process: number, op: OpName, key: string, extra: { error?: string } = {}, time?: number): this {
    this.events.push({ type: 'fail', process, op, key, ...extra, time: this.at(time) });
    return this;
  }
  info(process: number, op: OpName, key: string, time?: number): this {
    this.events.push({ type: 'info', process, op, key, time: this.at(time) });
    return this;
  }
  // Complete operations, one after the other.
  write(p: number, key: string, value: string, revision?: number): this {
    return this.inv(p, 'write', key, { value }).ok(p, 'write', key, revision === undefined ? {} : { revision });
  }
  read(p: number, key: string, value: string | null, revision?: number): this {
    return this.inv(p, 'read', key).ok(p, 'read', key, revision === undefined ? { value } : { value, revision });
  }
}

const verdict = (h: H): string => checkHistory(h.events).verdict;

describe('linearizability checker: valid histories', () => {
  it('accepts an empty history and a sequential one', () => {
    expect(checkHistory([]).verdict).toBe('ok');
    const h = new H().read(0, 'x', null).write(0, 'x', 'a', 2).read(1, 'x', 'a', 2).write(1, 'x', 'b', 3).read(0, 'x', 'b', 3);
    h.inv(0, 'delete', 'x').ok(0, 'delete', 'x', { value: 1 }).read(1, 'x', null);
    h.inv(0, 'delete', 'x').ok(0, 'delete', 'x', { value: 0 });
    expect(verdict(h)).toBe('ok');
  });

  it('accepts overlapping writes read in either order', () => {
    // p0 writes a, p1 writes b concurrently; readers see b then a: possible (a after b).
    const h = new H()
      .inv(0, 'write', 'x', { value: 'a' }, 0)
      .inv(1, 'write', 'x', { value: 'b' }, 1)
      .inv(2, 'read', 'x', {}, 2)
      .ok(2, 'read', 'x', { value: 'b' }, 3)
      .inv(2, 'read', 'x', {}, 4)
      .ok(2, 'read', 'x', { value: 'a' }, 5)
      .ok(0, 'write', 'x', {}, 6)
      .ok(1, 'write', 'x', {}, 7)
      .read(3, 'x', 'a');
    expect(verdict(h)).toBe('ok');
    // A read overlapping a write may see the old or the new value.
    const g = new H().write(0, 'y', 'old').inv(0, 'write', 'y', { value: 'new' }, 100).inv(1, 'read', 'y', {}, 101).ok(1, 'read', 'y', { value: 'old' }, 102).ok(0, 'write', 'y', {}, 103);
    expect(verdict(g)).toBe('ok');
  });

  it('accepts cas races where exactly one wins', () => {
    const h = new H()
      .write(0, 'x', 'v0', 2)
      .inv(1, 'cas', 'x', { value: 'v1', expected: { modRevision: 2 } }, 100)
      .inv(2, 'cas', 'x', { value: 'v2', expected: { modRevision: 2 } }, 101)
      .inv(3, 'cas', 'x', { value: 'v3', expected: 'v0' }, 102)
      .ok(2, 'cas', 'x', { revision: 3 }, 110)
      .fail(1, 'cas', 'x', {}, 111)
      .fail(3, 'cas', 'x', {}, 112)
      .read(0, 'x', 'v2', 3);
    expect(verdict(h)).toBe('ok');
    // cas on a missing key by mod revision 0 succeeds; by value it fails.
    const g = new H()
      .inv(0, 'cas', 'k', { value: 'n', expected: { modRevision: 0 } })
      .ok(0, 'cas', 'k', { revision: 5 })
      .inv(0, 'delete', 'k')
      .ok(0, 'delete', 'k', { value: 1 })
      .inv(0, 'cas', 'k', { value: 'm', expected: '' })
      .fail(0, 'cas', 'k');
    expect(verdict(g)).toBe('ok');
  });

  it('accepts unknown-outcome writes that did or did not take effect', () => {
    // Timed out and took effect later (seen after another process's write completed).
    const applied = new H().write(0, 'x', 'a').inv(1, 'write', 'x', { value: 'b' }).info(1, 'write', 'x').write(2, 'x', 'c').read(0, 'x', 'c').read(0, 'x', 'c');
    expect(verdict(applied)).toBe('ok');
    const appliedLate = new H().write(0, 'x', 'a').inv(1, 'write', 'x', { value: 'b' }).info(1, 'write', 'x').read(0, 'x', 'a').read(0, 'x', 'b').read(2, 'x', 'b');
    expect(verdict(appliedLate)).toBe('ok');
    // Never took effect.
    const lost = new H().write(0, 'x', 'a').inv(1, 'write', 'x', { value: 'b' }).info(1, 'write', 'x').read(0, 'x', 'a').read(2, 'x', 'a');
    expect(verdict(lost)).toBe('ok');
    // Invoked, never completed at all (the history just ends): same as info.
    const open = new H().write(0, 'x', 'a').inv(1, 'write', 'x', { value: 'b' }).read(0, 'x', 'b');
    expect(verdict(open)).toBe('ok');
    // A cas and a delete of unknown outcome.
    const cas = new H().write(0, 'x', 'a', 2).inv(1, 'cas', 'x', { value: 'z', expected: { modRevision: 2 } }).info(1, 'cas', 'x').read(0, 'x', 'z', 7);
    expect(verdict(cas)).toBe('ok');
    const del = new H().write(0, 'x', 'a').inv(1, 'delete', 'x').info(1, 'delete', 'x').read(0, 'x', null).write(0, 'x', 'b').read(2, 'x', 'b');
    expect(verdict(del)).toBe('ok');
  });

  it('ignores operations that definitely failed', () => {
    const h = new H().write(0, 'x', 'a').inv(1, 'write', 'x', { value: 'b' }).fail(1, 'write', 'x', { error: 'UNAVAILABLE' }).read(0, 'x', 'a');
    expect(verdict(h)).toBe('ok');
  });

  it('checks each key on its own', () => {
    const h = new H().write(0, 'x', 'a').write(1, 'y', 'b').read(2, 'x', 'a').read(2, 'y', 'b');
    const r = checkHistory(h.events);
    expect(r.verdict).toBe('ok');
    expect(r.keys.map((k) => [k.key, k.operations])).toEqual([
      ['x', 2],
      ['y', 2],
    ]);
  });

  it('round-trips the JSON-lines format', () => {
    const h = new H().write(0, 'x', 'a', 2).read(1, 'x', 'a', 2);
    const text = h.events.map((e) => JSON.stringify(e)).join('\n') + '\n';
    expect(parseHistory(text)).toEqual(h.events);
    expect(toOperations(parseHistory(text)).map((o) => [o.op, o.outcome])).toEqual([
      ['write', 'ok'],
      ['read', 'ok'],
    ]);
  });
});

describe('linearizability checker: violations', () => {
  it('catches a stale read', () => {
    const h = new H().write(0, 'x', 'a').write(0, 'x', 'b').read(1, 'x', 'a');
    const r = checkHistory(h.events);
    expect(r.verdict).toBe('violation');
    expect(r.keys[0].explanation).toMatch(/read -> "a"/);
  });

  it('gives the time window of a violation, and the summary cuts the history excerpt from it', async () => {
    const h = new H().write(0, 'y', 'q').write(0, 'x', 'a').write(0, 'x', 'b').read(1, 'x', 'a');
    const r = checkHistory(h.events);
    const k = r.keys.find((x) => x.key === 'x')!;
    expect(k.verdict).toBe('violation');
    const { excerpt } = await import('./harness');
    const text = excerpt(h.events, 'x', k.window!.from, k.window!.to);
    expect(text).toMatch(/"op":"read".*"value":"a"/); // the stale read is in it
    expect(text).toMatch(/"value":"b"/); // and the write it missed
    expect(text).not.toMatch(/"key":"y"/); // other keys are not
  });

  it('catches a stale read even with a concurrent unknown-outcome write of something else', () => {
    const h = new H().write(0, 'x', 'a').inv(2, 'write', 'x', { value: 'c' }).info(2, 'write', 'x').write(0, 'x', 'b').read(1, 'x', 'a');
    expect(verdict(h)).toBe('violation');
  });

  it('catches a lost acknowledged write', () => {
    const h = new H().write(0, 'x', 'a').write(1, 'x', 'b').read(2, 'x', 'a').read(2, 'x', 'a');
    expect(verdict(h)).toBe('violation');
    const fromNothing = new H().write(0, 'x', 'a').read(1, 'x', null);
    expect(verdict(fromNothing)).toBe('violation');
  });

  it('catches a write applied twice (a value back after being overwritten)', () => {
    const h = new H().write(0, 'x', 'a').write(1, 'x', 'b').read(2, 'x', 'b').read(2, 'x', 'a');
    expect(verdict(h)).toBe('violation');
    // Even when the first write's outcome was unknown.
    const g = new H().inv(0, 'write', 'x', { value: 'a' }).info(0, 'write', 'x').read(1, 'x', 'a').write(1, 'x', 'b').read(2, 'x', 'a');
    expect(verdict(g)).toBe('violation');
  });

  it('catches cas results that contradict the state', () => {
    // Both cas on the same mod revision succeed.
    const both = new H()
      .write(0, 'x', 'v0', 2)
      .inv(1, 'cas', 'x', { value: 'v1', expected: { modRevision: 2 } }, 100)
      .inv(2, 'cas', 'x', { value: 'v2', expected: { modRevision: 2 } }, 101)
      .ok(1, 'cas', 'x', { revision: 3 }, 110)
      .ok(2, 'cas', 'x', { revision: 4 }, 111);
    expect(verdict(both)).toBe('violation');
    // A cas fails although nothing could have changed the value.
    const spurious = new H().write(0, 'x', 'v0').inv(1, 'cas', 'x', { value: 'v1', expected: 'v0' }).fail(1, 'cas', 'x');
    expect(verdict(spurious)).toBe('violation');
  });

  it('catches a delete that reports the wrong count, and revisions going backwards', () => {
    const del = new H().write(0, 'x', 'a').inv(0, 'delete', 'x').ok(0, 'delete', 'x', { value: 0 });
    expect(verdict(del)).toBe('violation');
    const back = new H().write(0, 'x', 'a', 5).write(0, 'x', 'b', 4);
    expect(verdict(back)).toBe('violation');
    const wrongRev = new H().write(0, 'x', 'a', 5).read(1, 'x', 'a', 6);
    expect(verdict(wrongRev)).toBe('violation');
  });

  it('catches a read of a value never written', () => {
    expect(verdict(new H().write(0, 'x', 'a').read(1, 'x', 'zzz'))).toBe('violation');
  });

  it("reports 'unknown' when the search bound is hit", () => {
    const N = 10;
    // Many concurrent unknown-outcome writes, then a read nothing explains: the full
    // search must explore many subsets before concluding.
    const h = new H().write(99, 'x', 'a');
    for (let p = 0; p < N; p++) h.inv(p, 'write', 'x', { value: `w${p}` }, 100 + p);
    for (let p = 0; p < N; p++) h.info(p, 'write', 'x', 200 + p);
    h.read(100, 'x', 'w3').read(100, 'x', 'w5').read(100, 'x', 'a');
    const r = checkOperations(toOperations(h.events), { maxSteps: 500 });
    expect(r.verdict).toBe('unknown');
    expect(r.keys[0].steps).toBeLessThanOrEqual(1500);
    expect(checkOperations(toOperations(h.events)).verdict).toBe('violation');
  });
});

describe('linearizability checker: randomized', () => {
  const seed = seedFromEnv('CHAOS_CHECKER_SEED');
  const note = `(CHAOS_CHECKER_SEED=${seed})`;

  it(`accepts generated linearizable histories ${note}`, () => {
    const rng = new Rng(seed);
    for (let i = 0; i < 150; i++) {
      const events = generateHistory(rng, {
        processes: rng.int(1, 6),
        opsPerProcess: rng.int(1, 40),
        keys: ['a', 'b', 'c'].slice(0, rng.int(1, 3)),
        revisions: rng.chance(0.5),
        infoRate: rng.pick([0, 0.05, 0.2]),
      });
      const r = checkHistory(events, { timeoutMs: 20_000 });
      if (r.verdict !== 'ok') {
        console.error(`seed ${seed}, history #${i}:\n${events.map((e) => JSON.stringify(e)).join('\n')}\n${JSON.stringify(r, null, 1)}`);
      }
      expect(r.verdict, `history #${i} ${note}`).toBe('ok');
    }
  });

  it(`catches most histories with one read's value swapped ${note}`, () => {
    const rng = new Rng(seed ^ 0x5bd1e995);
    let mutated = 0;
    let caught = 0;
    let unknown = 0;
    for (let i = 0; i < 150; i++) {
      const events = generateHistory(rng, { processes: rng.int(2, 5), opsPerProcess: rng.int(5, 30), keys: ['a', 'b'], revisions: false, infoRate: 0.05 });
      const reads = events.filter((e) => e.type === 'ok' && e.op === 'read');
      if (reads.length === 0) continue;
      const victim = rng.pick(reads);
      const written = events.filter((e) => e.type === 'invoke' && (e.op === 'write' || e.op === 'cas') && e.key === victim.key).map((e) => e.value as string);
      const candidates = [null, ...written].filter((v) => v !== victim.value);
      victim.value = rng.pick(candidates);
      mutated++;
      const r = checkHistory(events, { timeoutMs: 20_000 });
      if (r.verdict === 'violation') caught++;
      if (r.verdict === 'unknown') unknown++;
    }
    console.log(`mutations: ${caught}/${mutated} caught, ${unknown} unknown ${note}`);
    expect(mutated).toBeGreaterThan(100);
    expect(unknown).toBe(0);
    expect(caught / mutated, note).toBeGreaterThan(0.6);
  });
});
