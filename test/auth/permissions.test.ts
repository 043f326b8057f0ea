/**
 * The permission decision: a request range is allowed when the union of the granted
 * ranges covers it. Checked against brute force over a small key space (every key of
 * length <= 3 over "ab\0"), with random grants and requests in etcd's three range forms
 * (one key, [key, end), key and everything after). Seeded: AUTH_SEED=<n> replays a run.
 */
import { describe, expect, it } from 'vitest';
import { covers } from '../../src/auth/store';

const seed = Number(process.env.AUTH_SEED ?? Math.floor(Math.random() * 2 ** 31));

function rng(s: number): () => number {
  let x = s >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

const ALPHABET = [0x00, 0x61, 0x62];
const KEYS: Buffer[] = [Buffer.alloc(0)];
// Up to length 4: every range end used below (a key of length <= 3, or one plus "\0") is
// itself a key here, so a gap between grants always contains an enumerated key.
for (let len = 1; len <= 4; len++) {
  const prev = KEYS.filter((k) => k.length === len - 1);
  for (const p of prev) for (const c of ALPHABET) KEYS.push(Buffer.concat([p, Buffer.of(c)]));
}
KEYS.sort(Buffer.compare);
const SHORT = KEYS.filter((k) => k.length <= 3);

type Range = { key: Buffer; end: Buffer | undefined }; // end undefined: everything from key on

function randomRange(r: () => number): Range {
  const key = SHORT[1 + Math.floor(r() * (SHORT.length - 1))];
  const form = r();
  if (form < 0.3) return { key, end: Buffer.concat([key, Buffer.of(0)]) }; // one key
  if (form < 0.4) return { key, end: undefined };
  const end = SHORT[Math.floor(r() * SHORT.length)];
  return { key, end };
}

const inRange = (k: Buffer, g: Range): boolean => Buffer.compare(k, g.key) >= 0 && (g.end === undefined || Buffer.compare(k, g.end) < 0);

describe('permission ranges', () => {
  it(`the union of grants covers a request exactly when every key of it is granted (AUTH_SEED=${seed})`, () => {
    const r = rng(seed);
    let allowed = 0;
    let denied = 0;
    for (let round = 0; round < 3000; round++) {
      const grants = Array.from({ length: Math.floor(r() * 4) }, () => randomRange(r)).map((g) => ({ start: g.key, end: g.end }));
      const want = randomRange(r);
      // Brute force: every key of the request, within the enumerated space; a request
      // reaching past the last enumerated key needs a grant that is unbounded too.
      const keys = KEYS.filter((k) => inRange(k, want));
      let expected = keys.every((k) => grants.some((g) => inRange(k, { key: g.start, end: g.end })));
      if (want.end === undefined) expected = expected && grants.some((g) => g.end === undefined && keys.length > 0 && Buffer.compare(g.start, keys[keys.length - 1]) <= 0);
      const got = covers(grants, { start: want.key, end: want.end });
      if (got !== expected) {
        throw new Error(`AUTH_SEED=${seed} round ${round}: grants ${JSON.stringify(grants.map((g) => [g.start.toString('hex'), g.end?.toString('hex') ?? '∞']))} want [${want.key.toString('hex')}, ${want.end?.toString('hex') ?? '∞'}) expected ${expected} got ${got}`);
      }
      if (got) allowed++;
      else denied++;
    }
    expect(allowed).toBeGreaterThan(100);
    expect(denied).toBeGreaterThan(100);
  });
});
