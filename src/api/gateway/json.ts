// A JSON reader for the gateway that behaves like Go's encoding/json decoder where clients can
// tell the difference: numbers keep their exact text (a lease ID above 2^53 must not be rounded),
// a body may hold several values one after another (the streamed watch and keep-alive bodies),
// a value cut short is "unexpected EOF", and syntax errors use Go's wording.

export class JsonNumber {
  constructor(readonly raw: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };

/** A syntax error, worded as Go's encoding/json words it. */
export class JsonSyntaxError extends Error {}

/** The text ended inside a value. */
class Incomplete extends Error {}

const WS = new Set([' ', '\t', '\n', '\r']);

/** Go's quoting of a character in its syntax errors. */
function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const code = c.codePointAt(0) ?? 0;
  if (code < 0x20) {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };
    return `'${named[c] ?? '\\x' + code.toString(16).padStart(2, '0')}'`;
  }
  return `'${c}'`;
}

class Parser {
  pos: number;
  constructor(private readonly text: string, start: number, private readonly final: boolean) {
    this.pos = start;
  }

  private peek(): string {
    if (this.pos >= this.text.length) throw new Incomplete();
    return this.text[this.pos];
  }

  private skipWs(): void {
    while (this.pos < this.text.length && WS.has(this.text[this.pos])) this.pos++;
  }

  private fail(c: string, context: string): never {
    throw new JsonSyntaxError(`invalid character ${quoteChar(c)} ${context}`);
  }

  value(): JsonValue {
    this.skipWs();
    const c = this.peek();
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    return this.fail(c, 'looking for beginning of value');
  }

  private object(): { [key: string]: JsonValue } {
    this.pos++; // {
    const out: { [key: string]: JsonValue } = {};
    this.skipWs();
    if (this.peek() === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skipWs();
      const c = this.peek();
      if (c !== '"') this.fail(c, 'looking for beginning of object key string');
      const key = this.string();
      this.skipWs();
      const colon = this.peek();
      if (colon !== ':') this.fail(colon, 'after object key');
      this.pos++;
      out[key] = this.value();
      this.skipWs();
      const next = this.peek();
      this.pos++;
      if (next === '}') return out;
      if (next !== ',') this.fail(next, 'after object key:value pair');
    }
  }

  private array(): JsonValue[] {
    this.pos++; // [
    const out: JsonValue[] = [];
    this.skipWs();
    if (this.peek() === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.skipWs();
      const next = this.peek();
      this.pos++;
      if (next === ']') return out;
      if (next !== ',') this.fail(next, 'after array element');
    }
  }

  private string(): string {
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      const c = this.peek();
      this.pos++;
      if (c === '"') return out;
      if (c === '\\') {
        const e = this.peek();
        this.pos++;
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e in simple) out += simple[e];
        else if (e === 'u') {
          let hex = '';
          for (let i = 0; i < 4; i++) {
            const h = this.peek();
            if (!/[0-9a-fA-F]/.test(h)) this.fail(h, 'in \\u hexadecimal character escape');
            hex += h;
            this.pos++;
          }
          out += String.fromCharCode(parseInt(hex, 16));
        } else this.fail(e, 'in string escape code');
      } else if (c < ' ') {
        this.fail(c, 'in string literal');
      } else out += c;
    }
  }

  private number(): JsonNumber {
    const start = this.pos;
    const t = this.text;
    const atEnd = (): boolean => {
      if (this.pos < t.length) return false;
      if (!this.final) throw new Incomplete(); // more digits may follow
      return true;
    };
    const digits = (): number => {
      const from = this.pos;
      while (!atEnd() && t[this.pos] >= '0' && t[this.pos] <= '9') this.pos++;
      return this.pos - from;
    };
    if (t[this.pos] === '-') {
      this.pos++;
      if (atEnd()) throw new Incomplete();
      const c = t[this.pos];
      if (!(c >= '0' && c <= '9')) this.fail(c, 'in numeric literal');
    }
    if (t[this.pos] === '0') this.pos++;
    else digits();
    if (!atEnd() && t[this.pos] === '.') {
      this.pos++;
      if (atEnd()) throw new Incomplete();
      if (digits() === 0) this.fail(t[this.pos], 'after decimal point in numeric literal');
    }
    if (!atEnd() && (t[this.pos] === 'e' || t[this.pos] === 'E')) {
      this.pos++;
      if (atEnd()) throw new Incomplete();
      if (t[this.pos] === '+' || t[this.pos] === '-') this.pos++;
      if (atEnd()) throw new Incomplete();
      if (digits() === 0) this.fail(t[this.pos], 'in exponent of numeric literal');
    }
    return new JsonNumber(t.slice(start, this.pos));
  }

  private literal<T>(word: string, v: T): T {
    for (let i = 0; i < word.length; i++) {
      const c = this.peek();
      if (c !== word[i]) this.fail(c, `in literal ${word} (expecting '${word[i]}')`);
      this.pos++;
    }
    return v;
  }
}

/**
 * Splits a stream of text into JSON values, one after another, as Go's json.Decoder reads
 * them. push() text as it arrives; next() gives the next complete value, or undefined when
 * more text is needed (or, after end(), when nothing but whitespace is left).
 */
export class JsonValueStream {
  private text = '';
  private ended = false;

  push(chunk: string): void {
    this.text += chunk;
  }

  end(): void {
    this.ended = true;
  }

  /** Characters held that do not make a complete value yet. */
  get buffered(): number {
    return this.text.length;
  }

  /** The next complete value; undefined when there is none (yet). Throws JsonSyntaxError. */
  next(): JsonValue | undefined {
    let start = 0;
    while (start < this.text.length && WS.has(this.text[start])) start++;
    if (start === this.text.length) {
      this.text = '';
      return undefined;
    }
    const p = new Parser(this.text, start, this.ended);
    try {
      const v = p.value();
      this.text = this.text.slice(p.pos);
      return v;
    } catch (e) {
      if (e instanceof Incomplete) {
        if (this.ended) throw new JsonSyntaxError('unexpected EOF');
        return undefined;
      }
      throw e;
    }
  }
}

/** The first JSON value of a complete body; undefined for an empty (whitespace only) body. */
export function parseFirstValue(text: string): JsonValue | undefined {
  const s = new JsonValueStream();
  s.push(text);
  s.end();
  return s.next();
}

/** Go's name for a JSON value's kind in "cannot unmarshal X into ..." errors. */
export function jsonKind(v: JsonValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'string';
  if (v instanceof JsonNumber) return 'number';
  if (Array.isArray(v)) return 'array';
  return 'object';
}
