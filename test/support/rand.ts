// A small seeded PRNG for randomized tests (mulberry32). Tests take their seed from the
// environment so a failure can be replayed, and pick a fresh one otherwise.

export function seedFromEnv(name: string): number {
  const v = process.env[name];
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new Error(`${name}=${v} is not an integer seed`);
    return n;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

export class Rand {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}
