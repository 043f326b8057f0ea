// The static Huffman code of HPACK (RFC 7541 Appendix B), which compresses header names and values.
//
// The code is canonical: a symbol's code follows from the code lengths alone (symbols sorted by
// length, then by value, take consecutive codes). So the table below is the 257 lengths of the
// RFC, and the codes, the decoding tree and the decoding automaton are built from them at load.
//
// Decoding runs a finite automaton four bits at a time (as nghttp2 does): a state is an internal
// node of the code tree, and a transition says where a nibble leads, whether it completed a
// symbol, and whether it ran into EOS. Every code is at least 5 bits long, so a nibble completes
// at most one symbol. Whether the padding is valid (RFC 7541 5.2: at most 7 bits, all of them 1,
// i.e. a proper prefix of EOS) is a property of the state the last nibble leaves: "accepting".

/** A malformed header block: a COMPRESSION_ERROR, after which the connection must end (RFC 7540 4.3). */
export class HpackError extends Error {
  override name = 'HpackError';
}

export const EOS_SYMBOL = 256;
const SYMBOL_COUNT = 257;

/** Code length in bits of symbols 0..255 and of EOS (256), as listed in RFC 7541 Appendix B. */
// prettier-ignore
const CODE_LENGTHS: readonly number[] = [
  // 0x00 - 0x1f: control characters
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  // 0x20 ' ' - 0x3f '?'
   6, 10, 10, 12, 13,  6,  8, 11, 10, 10,  8, 11,  8,  6,  6,  6,
   5,  5,  5,  6,  6,  6,  6,  6,  6,  6,  7,  8, 15,  6, 12, 10,
  // 0x40 '@' - 0x5f '_'
  13,  6,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,  7,
   7,  7,  7,  7,  7,  7,  7,  7,  8,  7,  8, 13, 19, 13, 14,  6,
  // 0x60 '`' - 0x7f DEL
  15,  5,  6,  5,  6,  5,  6,  6,  6,  5,  7,  7,  6,  6,  6,  5,
   6,  7,  6,  5,  5,  6,  7,  7,  7,  7,  7, 15, 11, 14, 13, 28,
  // 0x80 - 0xff
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  // EOS
  30,
];

/** Bit length of each symbol's code (index: symbol, 256 = EOS). */
export const huffmanLengths: Uint8Array = Uint8Array.from(CODE_LENGTHS);
/** Each symbol's code, right-aligned in huffmanLengths[symbol] bits. */
export const huffmanCodes: Uint32Array = canonicalCodes(huffmanLengths);

function canonicalCodes(lengths: Uint8Array): Uint32Array {
  if (lengths.length !== SYMBOL_COUNT) throw new Error(`huffman: ${lengths.length} code lengths, want ${SYMBOL_COUNT}`);
  const order = Array.from({ length: SYMBOL_COUNT }, (_, symbol) => symbol);
  order.sort((a, b) => lengths[a] - lengths[b] || a - b);
  const codes = new Uint32Array(SYMBOL_COUNT);
  let code = 0;
  let length = lengths[order[0]];
  for (const symbol of order) {
    code <<= lengths[symbol] - length; // codes stay below 2^30: no sign trouble
    length = lengths[symbol];
    codes[symbol] = code;
    code++;
  }
  // A complete prefix code ends exactly at 2^length: the last code is all ones (EOS here).
  if (code !== 2 ** length) throw new Error('huffman: code lengths do not make a complete prefix code');
  return codes;
}

// The automaton. A transition is packed in one uint32:
//   bits 0-7   the symbol completed by this nibble (when EMITS)
//   bits 8-15  the next state (an internal node of the code tree; 0 is the root)
//   EMITS      this nibble completed a symbol
//   FAILS      this nibble completed EOS, which must not appear inside a string (RFC 7541 5.2)
const EMITS = 1 << 16;
const FAILS = 1 << 17;
const INTERNAL_NODE_COUNT = SYMBOL_COUNT - 1; // a full binary tree with 257 leaves
const NIBBLE_VALUES = 16;

const { transitions, accepting } = buildAutomaton(huffmanLengths, huffmanCodes);

function buildAutomaton(lengths: Uint8Array, codes: Uint32Array): { transitions: Uint32Array; accepting: Uint8Array } {
  // child[2 * node + bit]: > 0 an internal node, < 0 the leaf of symbol -(child + 1), 0 none yet.
  const child = new Int32Array(2 * INTERNAL_NODE_COUNT);
  let nodeCount = 1;
  for (let symbol = 0; symbol < SYMBOL_COUNT; symbol++) {
    let node = 0;
    for (let i = lengths[symbol] - 1; i >= 0; i--) {
      const slot = 2 * node + ((codes[symbol] >>> i) & 1);
      if (child[slot] < 0) throw new Error(`huffman: code of ${symbol} extends the code of ${-child[slot] - 1}`);
      if (i === 0) {
        if (child[slot] !== 0) throw new Error(`huffman: code of ${symbol} is a prefix of another code`);
        child[slot] = -(symbol + 1);
      } else {
        if (child[slot] === 0) child[slot] = nodeCount++;
        node = child[slot];
      }
    }
  }
  if (nodeCount !== INTERNAL_NODE_COUNT) throw new Error(`huffman: ${nodeCount} internal nodes, want ${INTERNAL_NODE_COUNT}`);

  // Valid padding: the root (no padding) and the nodes reached from it by up to 7 one-bits.
  const accepting = new Uint8Array(INTERNAL_NODE_COUNT);
  for (let node = 0, ones = 0; ones <= 7; ones++, node = child[2 * node + 1]) accepting[node] = 1;

  const transitions = new Uint32Array(INTERNAL_NODE_COUNT * NIBBLE_VALUES);
  for (let state = 0; state < INTERNAL_NODE_COUNT; state++) {
    for (let nibble = 0; nibble < NIBBLE_VALUES; nibble++) {
      let node = state;
      let flags = 0;
      let symbol = 0;
      for (let bit = 3; bit >= 0; bit--) {
        const next = child[2 * node + ((nibble >> bit) & 1)];
        if (next > 0) {
          node = next;
          continue;
        }
        symbol = -next - 1;
        flags |= symbol === EOS_SYMBOL ? FAILS : EMITS;
        node = 0;
      }
      transitions[state * NIBBLE_VALUES + nibble] = flags | (node << 8) | (symbol & 0xff);
    }
  }
  return { transitions, accepting };
}

// Decoded bytes are gathered here, then copied out as one string: no allocation per symbol.
// A symbol takes at least 5 bits, so n input bytes decode to at most ceil(8n / 5) bytes.
let scratch = Buffer.allocUnsafe(256);

interface Latin1Sliceable {
  // Buffer.prototype.latin1Slice is what toString('latin1') ends in; @types/node does not declare it.
  latin1Slice(start: number, end: number): string;
}

/**
 * Decodes the Huffman-coded string src[start, end) into a latin1 string (one char per byte).
 * Throws HpackError when the string holds EOS or its padding is not 0 to 7 one-bits.
 */
export function huffmanDecode(src: Buffer, start: number, end: number): string {
  const decodedBytesMax = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < decodedBytesMax) scratch = Buffer.allocUnsafe(Math.max(decodedBytesMax, 2 * scratch.length));
  const out = scratch;
  let n = 0;
  let state = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i];
    let t = transitions[(state << 4) | (byte >> 4)];
    if ((t & (EMITS | FAILS)) !== 0) {
      if ((t & FAILS) !== 0) throw new HpackError('huffman: EOS inside a string');
      out[n++] = t & 0xff;
    }
    t = transitions[((t >> 4) & 0xff0) | (byte & 0x0f)];
    if ((t & (EMITS | FAILS)) !== 0) {
      if ((t & FAILS) !== 0) throw new HpackError('huffman: EOS inside a string');
      out[n++] = t & 0xff;
    }
    state = (t >> 8) & 0xff;
  }
  if (accepting[state] === 0) throw new HpackError('huffman: padding is longer than 7 bits or not all ones');
  return (out as unknown as Latin1Sliceable).latin1Slice(0, n);
}

/** Huffman-codes a latin1 string (every char code 0-255), padded with one-bits to a whole byte. */
export function huffmanEncode(s: string): Buffer {
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const symbol = s.charCodeAt(i);
    if (symbol > 0xff) throw new RangeError(`huffmanEncode: char ${symbol} at ${i} is not latin1`);
    bits += huffmanLengths[symbol];
  }
  const out = Buffer.allocUnsafe(Math.ceil(bits / 8));
  let o = 0;
  let acc = 0; // the pending bits of the current output byte
  let accBits = 0;
  for (let i = 0; i < s.length; i++) {
    const symbol = s.charCodeAt(i);
    const code = huffmanCodes[symbol];
    let remaining = huffmanLengths[symbol];
    while (remaining > 0) {
      const take = Math.min(remaining, 8 - accBits);
      remaining -= take;
      acc = (acc << take) | ((code >>> remaining) & ((1 << take) - 1));
      accBits += take;
      if (accBits === 8) {
        out[o++] = acc;
        acc = 0;
        accBits = 0;
      }
    }
  }
  if (accBits > 0) out[o++] = (acc << (8 - accBits)) | ((1 << (8 - accBits)) - 1);
  return out;
}
