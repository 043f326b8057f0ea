// The protobuf JSON mapping of etcd's grpc-gateway (golang/protobuf jsonpb with OrigName):
// field names as written in the .proto files, bytes as standard base64, 64-bit integers as
// decimal strings, enums by name, and fields holding their default value left out.
//
// The generated code in src/gen is built without toObject/fromObject, so the mapping walks
// a reflection of the same .proto files (loaded once, field names kept as written). A request
// is read from JSON into a message of the reflected type, encoded, and decoded by the static
// code, so the member sees exactly what a gRPC call would hand it; a response goes the other
// way.

import * as fs from 'node:fs';
import * as path from 'node:path';
import Long from 'long';
import { Enum, Root, Type, type Field } from 'protobufjs';
import { etcdserverpb } from '../../gen/proto';
import { JsonNumber, type JsonValue, jsonKind } from './json';

/** A request that cannot be read from its JSON (jsonpb's error text). */
export class JsonMappingError extends Error {}

interface StaticType {
  encode(m: unknown): { finish(): Uint8Array };
  decode(b: Uint8Array): unknown;
}

let root: Root | undefined;

/** The schema generated at build time (src/gen/proto-schema.json, beside the compiled code in dist). */
function reflection(): Root {
  if (root !== undefined) return root;
  const file = path.join(__dirname, '..', '..', 'gen', 'proto-schema.json');
  if (!fs.existsSync(file)) throw new Error(`gateway: the protobuf schema ${file} is missing (run npm run build)`);
  root = Root.fromJSON(JSON.parse(fs.readFileSync(file, 'utf8')));
  root.resolveAll();
  return root;
}

/** Loads the .proto files now (so a broken install fails at start, not on the first request). */
export function loadSchema(): void {
  reflection();
}

function typeOf(name: string): Type {
  return reflection().lookupType(`etcdserverpb.${name}`);
}

function staticOf(name: string): StaticType {
  const t = (etcdserverpb as unknown as Record<string, StaticType | undefined>)[name];
  if (t === undefined) throw new Error(`gateway: no generated type etcdserverpb.${name}`);
  return t;
}

// ---- JSON -> message -----------------------------------------------------------------

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const INT32_TYPES = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32']);
const UNSIGNED = new Set(['uint64', 'fixed64', 'uint32', 'fixed32']);

/** Go's name for the field's type in jsonpb's errors. */
function goTypeName(f: Field): string {
  if (f.resolvedType instanceof Enum) {
    const parts = f.resolvedType.fullName.replace(/^\./, '').split('.');
    return `${parts[0]}.${parts.slice(1).join('_')}`;
  }
  if (f.resolvedType instanceof Type) return 'map[string]json.RawMessage';
  if (f.type === 'bytes') return '[]uint8';
  if (f.type === 'double') return 'float64';
  if (f.type === 'float') return 'float32';
  if (f.type.startsWith('fixed') || f.type.startsWith('sfixed') || f.type.startsWith('sint')) {
    return (UNSIGNED.has(f.type) ? 'uint' : 'int') + f.type.replace(/^\D+/, '');
  }
  return f.type;
}

const cannot = (v: JsonValue, goType: string): JsonMappingError =>
  new JsonMappingError(`json: cannot unmarshal ${jsonKind(v)} into Go value of type ${goType}`);

const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;

/** An integer field from a JSON number or a quoted one, range-checked like Go's strconv. */
function readInteger(f: Field, v: JsonValue): bigint {
  let text: string;
  if (v instanceof JsonNumber) text = v.raw;
  else if (typeof v === 'string') {
    text = v.trim();
    if (text === '') throw new JsonMappingError('unexpected end of JSON input');
    if (!NUMBER.test(text)) {
      throw new JsonMappingError(`invalid character '${text[0]}' looking for beginning of value`);
    }
  } else throw cannot(v, goTypeName(f));
  const bad = (): JsonMappingError => new JsonMappingError(`json: cannot unmarshal number ${text} into Go value of type ${goTypeName(f)}`);
  if (!/^-?\d+$/.test(text)) throw bad();
  const n = BigInt(text);
  const bits = LONG_TYPES.has(f.type) ? 64 : 32;
  const unsigned = UNSIGNED.has(f.type);
  const min = unsigned ? 0n : -(1n << BigInt(bits - 1));
  const max = unsigned ? (1n << BigInt(bits)) - 1n : (1n << BigInt(bits - 1)) - 1n;
  if (n < min || n > max) throw bad();
  return n;
}

const B64 = /[A-Za-z0-9+/]/;

/** Standard base64 with padding, strict as Go's base64.StdEncoding (which skips CR and LF). */
export function decodeBase64(s: string): Buffer {
  const illegal = (at: number): JsonMappingError => new JsonMappingError(`illegal base64 data at input byte ${at}`);
  let quantum = 0; // characters of the current 4-character group
  let groupStart = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '\r' || c === '\n') continue;
    if (c === '=') break;
    if (!B64.test(c)) throw illegal(i);
    if (quantum === 0) groupStart = i;
    quantum = (quantum + 1) % 4;
  }
  if (i === s.length) {
    if (quantum !== 0) throw illegal(groupStart);
  } else {
    // Padding: "xx==" or "xxx=", then nothing.
    if (quantum < 2) throw illegal(i);
    const need = 4 - quantum;
    let got = 0;
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === '\r' || c === '\n') continue;
      if (c !== '=' || got === need) throw illegal(i);
      got++;
    }
    if (got < need) throw illegal(s.length);
  }
  return Buffer.from(s.replace(/[\r\n]/g, ''), 'base64');
}

function readScalar(f: Field, v: JsonValue): unknown {
  if (f.resolvedType instanceof Type) return readMessage(f.resolvedType, v);
  if (f.resolvedType instanceof Enum) {
    if (typeof v === 'string') {
      const n = f.resolvedType.values[v];
      if (n === undefined) throw new JsonMappingError(`unknown value ${JSON.stringify(v)} for enum ${goTypeName(f)}`);
      return n;
    }
    if (v instanceof JsonNumber) return Number(readInteger(f, v));
    throw cannot(v, goTypeName(f));
  }
  switch (f.type) {
    case 'bool':
      if (typeof v !== 'boolean') throw cannot(v, 'bool');
      return v;
    case 'string':
      if (typeof v !== 'string') throw cannot(v, 'string');
      return v;
    case 'bytes':
      if (typeof v !== 'string') throw cannot(v, '[]uint8');
      return decodeBase64(v);
    case 'double':
    case 'float': {
      if (v instanceof JsonNumber) return Number(v.raw);
      if (typeof v === 'string' && ['NaN', 'Infinity', '-Infinity'].includes(v)) return Number(v);
      if (typeof v === 'string' && NUMBER.test(v.trim())) return Number(v.trim());
      throw cannot(v, goTypeName(f));
    }
    default: {
      const n = readInteger(f, v);
      if (INT32_TYPES.has(f.type)) return Number(n);
      const unsigned = UNSIGNED.has(f.type);
      return Long.fromString(n.toString(), unsigned);
    }
  }
}

/** jsonpb's accepted names for a field: as written in the .proto, or its lowerCamelCase JSON name. */
function jsonName(name: string): string {
  return name.replace(/_([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function readMessage(t: Type, v: JsonValue): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || v instanceof JsonNumber || Array.isArray(v)) {
    throw cannot(v, 'map[string]json.RawMessage');
  }
  const out: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    let raw: JsonValue | undefined = v[f.name];
    if (raw === undefined) {
      const alt = jsonName(f.name);
      if (alt !== f.name) raw = v[alt];
    }
    if (raw === undefined || raw === null) continue; // unknown fields are ignored, null is the default
    if (f.map) continue; // no map fields in the requests the gateway serves
    if (f.repeated) {
      if (!Array.isArray(raw)) throw cannot(raw, '[]json.RawMessage');
      out[f.name] = raw.filter((x) => x !== null).map((x) => readScalar(f, x));
    } else out[f.name] = readScalar(f, raw);
  }
  return out;
}

/**
 * Reads a request of type etcdserverpb.<name> from its JSON, as the static code's decoder
 * would produce it from the wire; also returns the encoded size (the gRPC message size).
 */
export function requestFromJson<T>(name: string, v: JsonValue | undefined): { message: T; size: number } {
  const t = typeOf(name);
  const obj = v === undefined || v === null ? {} : readMessage(t, v);
  const bytes = t.encode(obj).finish();
  return { message: staticOf(name).decode(bytes) as T, size: bytes.length };
}

// ---- message -> JSON -----------------------------------------------------------------

function longToString(v: unknown, unsigned: boolean): string {
  let big: bigint;
  if (typeof v === 'number') big = BigInt(Math.trunc(v));
  else if (typeof v === 'bigint') big = v;
  else if (typeof v === 'string') big = BigInt(v);
  else {
    const l = v as Long;
    big = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
  }
  return (unsigned ? BigInt.asUintN(64, big) : BigInt.asIntN(64, big)).toString();
}

function isDefault(f: Field, v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (f.resolvedType instanceof Type) return false;
  if (typeof v === 'number') return v === 0;
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'string') return v === '';
  if (v instanceof Uint8Array) return v.length === 0;
  if (Long.isLong(v)) return (v as Long).isZero();
  return false;
}

function writeScalar(f: Field, v: unknown): unknown {
  if (f.resolvedType instanceof Type) return writeMessage(f.resolvedType, v as Record<string, unknown>);
  if (f.resolvedType instanceof Enum) return f.resolvedType.valuesById[v as number] ?? v;
  if (LONG_TYPES.has(f.type)) return longToString(v, UNSIGNED.has(f.type));
  if (f.type === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
  if ((f.type === 'double' || f.type === 'float') && typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

function writeMessage(t: Type, m: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of t.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(m, f.name)) continue;
    const v = m[f.name];
    if (f.map) continue;
    if (f.repeated) {
      if (Array.isArray(v) && v.length > 0) out[f.name] = v.map((x: unknown) => writeScalar(f, x));
      continue;
    }
    // A member of a oneof is shown whenever it is set; other fields only when not the default.
    if (f.partOf === null && isDefault(f, v)) continue;
    if (v === null || v === undefined) continue;
    out[f.name] = writeScalar(f, v);
  }
  return out;
}

/** The JSON mapping of a response given as the static code's object for etcdserverpb.<name>. */
export function responseToJson(name: string, message: unknown): Record<string, unknown> {
  const bytes = staticOf(name).encode(message).finish();
  const t = typeOf(name);
  return writeMessage(t, t.decode(bytes) as unknown as Record<string, unknown>);
}
