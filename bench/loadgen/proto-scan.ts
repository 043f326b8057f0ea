/**
 * Minimal protobuf wire-format scanning for response checks on the hot path: walk the
 * top-level fields of a message without decoding it (no allocation), to see which
 * field numbers are present or read one small varint.
 */

/** Read a varint at `pos`; returns the value (exact below 2^53) and stores the next offset in `next[0]`. */
function readVarint(buf: Uint8Array, pos: number, next: Int32Array): number {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= buf.length) return -1;
    const b = buf[pos++];
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      next[0] = pos;
      return value;
    }
    mul *= 128;
  }
  return -1;
}

const cursor = new Int32Array(1);

/**
 * The value of top-level varint field `field` (the last occurrence), the count of
 * length-delimited occurrences of `field`, or -1 when absent; -2 on malformed input.
 */
export function scanField(buf: Uint8Array, field: number): number {
  let pos = 0;
  let result = -1;
  while (pos < buf.length) {
    const tag = readVarint(buf, pos, cursor);
    if (tag < 0) return -2;
    pos = cursor[0];
    const num = Math.floor(tag / 8);
    const wire = tag & 7;
    switch (wire) {
      case 0: {
        const v = readVarint(buf, pos, cursor);
        if (v < 0) return -2;
        pos = cursor[0];
        if (num === field) result = v;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = readVarint(buf, pos, cursor);
        if (len < 0) return -2;
        pos = cursor[0] + len;
        if (num === field) result = result < 0 ? 1 : result + 1;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        return -2;
    }
  }
  return pos === buf.length ? result : -2;
}
