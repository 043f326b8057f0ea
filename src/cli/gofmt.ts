/**
 * Go formatting helpers, so that cairnctl prints what etcdctl (a Go program) prints:
 * strconv.Quote (%q), hex (%x / %016x), humanize.Bytes, time.Duration.String, zap and
 * capnslog log lines, and encoding/json of etcd's protobuf structs (omitempty, uint64
 * as plain numbers, []byte as base64).
 */

/** Go's %q of a byte string (strconv.Quote: invalid UTF-8 as \xNN, non-printable escaped). */
export function goQuote(b: Buffer | string): string {
  const buf = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  let out = '"';
  let i = 0;
  while (i < buf.length) {
    const c = buf[i];
    if (c < 0x80) {
      i++;
      if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += '\\\\';
      else if (c >= 0x20 && c < 0x7f) out += String.fromCharCode(c);
      else if (c === 7) out += '\\a';
      else if (c === 8) out += '\\b';
      else if (c === 12) out += '\\f';
      else if (c === 10) out += '\\n';
      else if (c === 13) out += '\\r';
      else if (c === 9) out += '\\t';
      else if (c === 11) out += '\\v';
      else out += '\\x' + c.toString(16).padStart(2, '0');
      continue;
    }
    const n = c >= 0xf0 && c < 0xf8 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    let cp = -1;
    if (n > 0 && i + n <= buf.length) {
      const s = buf.subarray(i, i + n).toString('utf8');
      const p = s.codePointAt(0);
      if (p !== undefined && p !== 0xfffd && Buffer.from(s, 'utf8').equals(buf.subarray(i, i + n)) && [...s].length === 1) cp = p;
      else if (p === 0xfffd && buf[i] === 0xef && buf[i + 1] === 0xbf && buf[i + 2] === 0xbd && n === 3) cp = p;
    }
    if (cp < 0) {
      out += '\\x' + c.toString(16).padStart(2, '0');
      i++;
      continue;
    }
    const ch = String.fromCodePoint(cp);
    if (/[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch;
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
    i += n;
  }
  return out + '"';
}

/** etcdctl's --hex form: \x66\x6f\x6f */
export function hexBytes(b: Buffer): string {
  let s = '';
  for (const c of b) s += '\\x' + c.toString(16).padStart(2, '0');
  return s;
}

/** %016x of an int64 lease ID (negative IDs as two's complement, like Go's %x of uint64... Go prints -x for negative int64). */
export function hex16(id: bigint): string {
  if (id < 0n) return '-' + (-id).toString(16).padStart(16, '0');
  return id.toString(16).padStart(16, '0');
}

/** github.com/dustin/go-humanize Bytes (SI units). */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const sizes = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const val = Math.floor((n / Math.pow(1000, e)) * 10 + 0.5) / 10;
  return val < 10 ? `${val.toFixed(1)} ${sizes[e]}` : `${val.toFixed(0)} ${sizes[e]}`;
}

function fmtFrac(v: bigint, prec: bigint): string {
  const whole = v / prec;
  let frac = (v % prec).toString().padStart(prec.toString().length - 1, '0').replace(/0+$/, '');
  return frac.length > 0 ? `${whole}.${frac}` : `${whole}`;
}

/** Go's time.Duration.String of a duration in nanoseconds. */
export function goDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let s: string;
  if (u < 1000n) s = `${u}ns`;
  else if (u < 1_000_000n) s = fmtFrac(u, 1000n) + 'µs';
  else if (u < 1_000_000_000n) s = fmtFrac(u, 1_000_000n) + 'ms';
  else {
    const h = u / 3_600_000_000_000n;
    u -= h * 3_600_000_000_000n;
    const m = u / 60_000_000_000n;
    u -= m * 60_000_000_000n;
    s = fmtFrac(u, 1_000_000_000n) + 's';
    if (h > 0n) s = `${h}h${m}m${s}`;
    else if (m > 0n) s = `${m}m${s}`;
  }
  return neg ? '-' + s : s;
}

/** Parse a Go duration ("2s", "500ms", "1m30s"); null if invalid. Result in ms. */
export function parseGoDuration(s: string): number | null {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  let neg = false;
  let str = s;
  if (str.startsWith('-') || str.startsWith('+')) {
    neg = str[0] === '-';
    str = str.slice(1);
  }
  if (str.length === 0) return null;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  re.lastIndex = 0;
  while (pos < str.length) {
    re.lastIndex = pos;
    const m = re.exec(str);
    if (m === null) return null;
    total += parseFloat(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  return neg ? -total : total;
}

/** strconv.ParseInt(s, base, 64): the value, or Go's error text. */
export function parseInt64(s: string, base: 10 | 16): { value: bigint } | { error: string } {
  const re = base === 10 ? /^[+-]?[0-9]+$/ : /^[+-]?[0-9a-fA-F]+$/;
  if (!re.test(s)) return { error: `strconv.ParseInt: parsing ${goQuote(s)}: invalid syntax` };
  const neg = s.startsWith('-');
  const digits = s.replace(/^[+-]/, '');
  const v = BigInt((base === 16 ? '0x' : '') + digits) * (neg ? -1n : 1n);
  if (v > 9223372036854775807n || v < -9223372036854775808n) return { error: `strconv.ParseInt: parsing ${goQuote(s)}: value out of range` };
  return { value: v };
}

// ---------------------------------------------------------------------------------
// JSON (encoding/json of gogoproto structs)

/** A JSON member: [name, encoded value], or null to leave out. */
export type Member = [string, string] | null;

export function jobj(members: Member[]): string {
  return '{' + members.filter((m): m is [string, string] => m !== null).map(([k, v]) => JSON.stringify(k) + ':' + v).join(',') + '}';
}

/** omitempty number */
export function onum(name: string, v: number | bigint): Member {
  return v === 0 || v === 0n ? null : [name, String(v)];
}
/** omitempty bool */
export function obool(name: string, v: boolean): Member {
  return v ? [name, 'true'] : null;
}
/** omitempty []byte (base64) */
export function obytes(name: string, v: Buffer): Member {
  return v.length === 0 ? null : [name, JSON.stringify(v.toString('base64'))];
}
/** omitempty string */
export function ostr(name: string, v: string): Member {
  return v.length === 0 ? null : [name, jstr(v)];
}
/** encoding/json string (escapes <, >, & as Go does). */
export function jstr(v: string): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

// ---------------------------------------------------------------------------------
// Log lines

/** capnslog's time: "2006-01-02 15:04:05.000000" in local time. */
export function capnslogTime(d = new Date()): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

/** zap's epoch-seconds float timestamp. */
export function zapEpoch(): string {
  return (Date.now() / 1000).toFixed(7);
}

/** strconv.ParseUint(s, base, 64): the value, or Go's error text. */
export function parseUint64(s: string, base: 10 | 16): { value: bigint } | { error: string } {
  const re = base === 10 ? /^[0-9]+$/ : /^[0-9a-fA-F]+$/;
  if (!re.test(s)) return { error: `strconv.ParseUint: parsing ${goQuote(s)}: invalid syntax` };
  const v = BigInt((base === 16 ? '0x' : '') + s);
  if (v > 0xffffffffffffffffn) return { error: `strconv.ParseUint: parsing ${goQuote(s)}: value out of range` };
  return { value: v };
}

/** etcd's types.NewURLs checks (clientv3 runs them before MemberAdd / MemberUpdate): an error text or null. */
export function checkPeerUrls(urls: string[]): string | null {
  for (const raw of urls) {
    const u = raw.trim();
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):(.*)$/.exec(u);
    const scheme = m ? m[1].toLowerCase() : '';
    if (!['http', 'https', 'unix', 'unixs'].includes(scheme)) return `URL scheme must be http, https, unix, or unixs: ${u}`;
    const rest = m ? m[2] : '';
    const hp = /^\/\/([^/?#]*)(.*)$/.exec(rest);
    const host = hp ? hp[1].replace(/^.*@/, '') : '';
    const path = hp ? hp[2].replace(/[?#].*$/, '') : rest;
    if (!/^(\[[^\]]*\]|[^:]*):[^:]*$/.test(host)) return `URL address does not have the form "host:port": ${u}`;
    if (path !== '') return `URL must not contain a path: ${u}`;
  }
  return null;
}
