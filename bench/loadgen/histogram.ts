/**
 * Fixed-size log-linear latency histogram in whole microseconds.
 *
 * Values below 128 µs get one bucket each; above, every power of two is split into 64
 * equal sub-buckets, so a reported quantile is within 1/64 (1.6 %) of the true value.
 * Values are clamped to LATENCY_US_MAX (about 35 min). The bucket array is preallocated
 * (BUCKET_COUNT entries), recording never allocates, and histograms from several worker
 * threads merge by adding their bucket arrays.
 */

const SUB_BITS = 6;
const SUB_COUNT = 1 << SUB_BITS; // 64 sub-buckets per power of two
const LINEAR_LIMIT = 2 * SUB_COUNT; // 128: below this, one bucket per µs
const EXP_MAX = 30; // largest floor(log2(v)) that fits in an int32
export const LATENCY_US_MAX = 2 ** 31 - 1;
export const BUCKET_COUNT = LINEAR_LIMIT + (EXP_MAX - 6) * SUB_COUNT;

function bucketOf(us: number): number {
  if (us < LINEAR_LIMIT) return us;
  const exp = 31 - Math.clz32(us); // >= 7
  const sub = (us >>> (exp - SUB_BITS)) - SUB_COUNT; // 0..63
  return LINEAR_LIMIT + (exp - SUB_BITS - 1) * SUB_COUNT + sub;
}

/** Lowest value (µs) that falls into bucket `i`, and the bucket's width. */
function bucketRange(i: number): { low: number; width: number } {
  if (i < LINEAR_LIMIT) return { low: i, width: 1 };
  const exp = SUB_BITS + 1 + Math.floor((i - LINEAR_LIMIT) / SUB_COUNT);
  const sub = (i - LINEAR_LIMIT) % SUB_COUNT;
  const width = 2 ** (exp - SUB_BITS);
  return { low: (SUB_COUNT + sub) * width, width };
}

/** The plain-data form that crosses worker_threads (structured clone) and goes into JSON. */
export interface HistogramData {
  counts: Float64Array;
  total: number;
  sumUs: number;
  maxUs: number;
}

export class Histogram {
  readonly counts = new Float64Array(BUCKET_COUNT);
  total = 0;
  sumUs = 0;
  maxUs = 0;

  /** Record one latency, in microseconds (fractions are rounded). */
  record(us: number): void {
    let v = Math.round(us);
    if (v < 0) v = 0;
    else if (v > LATENCY_US_MAX) v = LATENCY_US_MAX;
    this.counts[bucketOf(v)]++;
    this.total++;
    this.sumUs += v;
    if (v > this.maxUs) this.maxUs = v;
  }

  data(): HistogramData {
    return { counts: this.counts, total: this.total, sumUs: this.sumUs, maxUs: this.maxUs };
  }

  static from(d: HistogramData): Histogram {
    const h = new Histogram();
    h.add(d);
    return h;
  }

  add(d: HistogramData): void {
    if (d.counts.length !== BUCKET_COUNT) throw new Error(`histogram: ${d.counts.length} buckets, expected ${BUCKET_COUNT}`);
    for (let i = 0; i < BUCKET_COUNT; i++) this.counts[i] += d.counts[i];
    this.total += d.total;
    this.sumUs += d.sumUs;
    if (d.maxUs > this.maxUs) this.maxUs = d.maxUs;
  }

  /** The q-quantile (0 < q <= 1) in µs: the middle of the bucket holding that rank, capped at max. */
  quantileUs(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < BUCKET_COUNT; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        const { low, width } = bucketRange(i);
        return Math.min(low + (width - 1) / 2, this.maxUs);
      }
    }
    return this.maxUs;
  }

  meanUs(): number {
    return this.total === 0 ? NaN : this.sumUs / this.total;
  }
}
