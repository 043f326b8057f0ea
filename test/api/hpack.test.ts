// HPACK (RFC 7541): the decoder against the RFC's worked examples, against what Node's own
// HTTP/2 client (nghttp2) sends, and against malformed blocks; the encoder and the Huffman code
// by round trips. Random values are seeded: HPACK_SEED=<n> replays a run.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HpackConstants, HpackDecoder, HpackError, encodeHeaders } from '../../src/api/h2/hpack';
import { Rand, seedFromEnv } from '../support/rand';
import { EOS_SYMBOL, huffmanCodes, huffmanDecode, huffmanEncode, huffmanLengths } from '../../src/api/h2/huffman';

const seed = seedFromEnv('HPACK_SEED');
const seedNote = `HPACK_SEED=${seed}`;

/** Uniform numbers in [0, 1) from `s` (test/support/rand.ts). */
function rng(s: number): () => number {
  const rand = new Rand(s);
  return () => rand.next();
}

/** Bytes from the RFC's hex dumps ("8286 8441 ..."). */
function hex(dump: string): Buffer {
  return Buffer.from(dump.replace(/\s+/g, ''), 'hex');
}

/** [name, value, name, value, ...] as the decoder returns, from pairs. */
function flat(pairs: ReadonlyArray<readonly [string, string]>): string[] {
  return pairs.flatMap(([name, value]) => [name, value]);
}

function pairsOf(fields: string[]): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i], fields[i + 1]]);
  return pairs;
}

/** Bits written as '0'/'1' characters, packed MSB first; the length must be a multiple of 8. */
function bits(s: string): Buffer {
  expect(s.length % 8).toBe(0);
  const out = Buffer.alloc(s.length / 8);
  for (let i = 0; i < s.length; i++) if (s[i] === '1') out[i >> 3] |= 0x80 >> (i & 7);
  return out;
}

/** A literal without indexing, new name (raw), whose value is the given Huffman-coded bytes. */
function literalWithHuffmanValue(name: string, coded: Buffer): Buffer {
  expect(name.length).toBeLessThan(127);
  expect(coded.length).toBeLessThan(127);
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, 'latin1'), Buffer.from([0x80 | coded.length]), coded]);
}

/** A literal with incremental indexing, new name, raw strings shorter than 127 bytes. */
function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([
    Buffer.from([0x40, name.length]),
    Buffer.from(name, 'latin1'),
    Buffer.from([value.length]),
    Buffer.from(value, 'latin1'),
  ]);
}

describe('the Huffman code (RFC 7541 Appendix B)', () => {
  it('built canonically from the code lengths, gives the codes of the RFC table', () => {
    const cases: Array<[number, number, number]> = [
      // [symbol, code, length], read off Appendix B
      [0x30 /* '0' */, 0b00000, 5],
      [0x61 /* 'a' */, 0b00011, 5],
      [0x74 /* 't' */, 0b01001, 5],
      [0x20 /* ' ' */, 0b010100, 6],
      [0x2f /* '/' */, 0b011000, 6],
      [0x41 /* 'A' */, 0b100001, 6],
      [0x7a /* 'z' */, 0b1111011, 7],
      [0x00, 0x1ff8, 13],
      [0x0a, 0x3ffffffc, 30],
      [0xff, 0x3ffffee, 26],
      [EOS_SYMBOL, 0x3fffffff, 30],
    ];
    for (const [symbol, code, length] of cases) {
      expect([huffmanCodes[symbol], huffmanLengths[symbol]], `symbol ${symbol}`).toEqual([code, length]);
    }
  });

  it("agrees on all 257 codes with hpack.js's own transcription of Appendix B", () => {
    // hpack.js (a dev dependency for this check only) typed its table independently.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const theirs = require('hpack.js/lib/hpack/huffman.js') as { encode: Array<[number, number]> };
    expect(theirs.encode.length).toBe(EOS_SYMBOL + 1);
    for (let symbol = 0; symbol <= EOS_SYMBOL; symbol++) {
      expect([huffmanLengths[symbol], huffmanCodes[symbol]], `symbol ${symbol}`).toEqual(theirs.encode[symbol]);
    }
  });

  it('is a complete prefix code: the lengths satisfy Kraft with equality', () => {
    let kraft = 0;
    for (let symbol = 0; symbol <= EOS_SYMBOL; symbol++) kraft += 2 ** -huffmanLengths[symbol];
    expect(kraft).toBe(1);
  });

  it('decodes what it encodes, for random byte strings', () => {
    const r = rng(seed);
    const int = (n: number): number => Math.floor(r() * n);
    for (let round = 0; round < 2000; round++) {
      const length = int(4) === 0 ? int(600) : int(40);
      const alphabet = int(2) === 0 ? 256 : 0x7f; // header text is mostly ASCII: short codes, more padding cases
      const s = String.fromCharCode(...Array.from({ length }, () => int(alphabet)));
      const coded = huffmanEncode(s);
      let codedBits = 0;
      for (let i = 0; i < s.length; i++) codedBits += huffmanLengths[s.charCodeAt(i)];
      expect(coded.length, seedNote).toBe(Math.ceil(codedBits / 8));
      const framed = Buffer.concat([Buffer.from([0xaa]), coded, Buffer.from([0x55])]);
      expect(huffmanDecode(framed, 1, 1 + coded.length), seedNote).toBe(s);
    }
  });

  it('decodes the RFC examples of C.4.1', () => {
    expect(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff'), 0, 12)).toBe('www.example.com');
    expect(huffmanDecode(hex('a8eb 1064 9cbf'), 0, 6)).toBe('no-cache');
  });

  it('refuses EOS inside a string', () => {
    const eosAfterA = bits('00011' + '1'.repeat(30) + '11111'); // 'a', EOS, 5 bits of padding
    expect(() => huffmanDecode(eosAfterA, 0, eosAfterA.length)).toThrow(HpackError);
    const eosAlone = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    expect(() => huffmanDecode(eosAlone, 0, 4)).toThrow(HpackError);
  });

  it('refuses padding longer than 7 bits', () => {
    expect(() => huffmanDecode(Buffer.from([0xff]), 0, 1)).toThrow(HpackError);
    const aThenElevenOnes = Buffer.from([0x1f, 0xff]); // 'a' = 00011, then 3 + 8 one-bits
    expect(() => huffmanDecode(aThenElevenOnes, 0, 2)).toThrow(HpackError);
    expect(huffmanDecode(Buffer.from([0x1f]), 0, 1)).toBe('a');
  });

  it('refuses padding that is not all one-bits', () => {
    expect(() => huffmanDecode(Buffer.from([0x18]), 0, 1)).toThrow(HpackError); // 'a' then 000
    expect(() => huffmanDecode(Buffer.from([0x1d]), 0, 1)).toThrow(HpackError); // 'a' then 101
  });
});

describe('HpackDecoder on RFC 7541 Appendix C', () => {
  it('C.2.1: literal with indexing adds the field to the dynamic table', () => {
    const d = new HpackDecoder();
    const block = hex('400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572');
    expect(d.decode(block)).toEqual(['custom-key', 'custom-header']);
    expect(d.dynamicTable()).toEqual([['custom-key', 'custom-header']]);
    expect(d.dynamicTableSize).toBe(55);
  });

  it('C.2.2: literal without indexing leaves the table empty', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('040c 2f73 616d 706c 652f 7061 7468'))).toEqual([':path', '/sample/path']);
    expect(d.dynamicTableSize).toBe(0);
  });

  it('C.2.3: literal never indexed leaves the table empty', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('1008 7061 7373 776f 7264 0673 6563 7265 74'))).toEqual(['password', 'secret']);
    expect(d.dynamicTableSize).toBe(0);
  });

  it('C.2.4: an indexed field from the static table', () => {
    const d = new HpackDecoder();
    expect(d.decode(hex('82'))).toEqual([':method', 'GET']);
    expect(d.dynamicTableSize).toBe(0);
  });

  const request1: Array<[string, string]> = [
    [':method', 'GET'],
    [':scheme', 'http'],
    [':path', '/'],
    [':authority', 'www.example.com'],
  ];
  const request2: Array<[string, string]> = [...request1, ['cache-control', 'no-cache']];
  const request3: Array<[string, string]> = [
    [':method', 'GET'],
    [':scheme', 'https'],
    [':path', '/index.html'],
    [':authority', 'www.example.com'],
    ['custom-key', 'custom-value'],
  ];
  const requestTables: Array<Array<[string, string]>> = [
    [[':authority', 'www.example.com']],
    [
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
    [
      ['custom-key', 'custom-value'],
      ['cache-control', 'no-cache'],
      [':authority', 'www.example.com'],
    ],
  ];
  const requestTableSizes = [57, 110, 164];

  const date1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
  const date2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
  const location = 'https://www.example.com';
  const cookie = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
  const response1: Array<[string, string]> = [
    [':status', '302'],
    ['cache-control', 'private'],
    ['date', date1],
    ['location', location],
  ];
  const response2: Array<[string, string]> = [[':status', '307'], ...response1.slice(1)];
  const response3: Array<[string, string]> = [
    [':status', '200'],
    ['cache-control', 'private'],
    ['date', date2],
    ['location', location],
    ['content-encoding', 'gzip'],
    ['set-cookie', cookie],
  ];
  const responseTables: Array<Array<[string, string]>> = [
    [
      ['location', location],
      ['date', date1],
      ['cache-control', 'private'],
      [':status', '302'],
    ],
    [
      [':status', '307'],
      ['location', location],
      ['date', date1],
      ['cache-control', 'private'],
    ],
    [
      ['set-cookie', cookie],
      ['content-encoding', 'gzip'],
      ['date', date2],
    ],
  ];
  const responseTableSizes = [222, 222, 215];

  function decodesInSequence(
    tableSize: number,
    blocks: string[],
    lists: Array<Array<[string, string]>>,
    tables: Array<Array<[string, string]>>,
    sizes: number[],
  ): void {
    const d = new HpackDecoder(tableSize);
    blocks.forEach((block, i) => {
      expect(d.decode(hex(block)), `block ${i + 1}`).toEqual(flat(lists[i]));
      expect(d.dynamicTable(), `table after block ${i + 1}`).toEqual(tables[i]);
      expect(d.dynamicTableSize, `table size after block ${i + 1}`).toBe(sizes[i]);
    });
  }

  it('C.3: three requests on one decoder, without Huffman', () => {
    decodesInSequence(
      4096,
      [
        '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '8286 84be 5808 6e6f 2d63 6163 6865',
        '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
      ],
      [request1, request2, request3],
      requestTables,
      requestTableSizes,
    );
  });

  it('C.4: three requests on one decoder, with Huffman', () => {
    decodesInSequence(
      4096,
      [
        '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
        '8286 84be 5886 a8eb 1064 9cbf',
        '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
      ],
      [request1, request2, request3],
      requestTables,
      requestTableSizes,
    );
  });

  it('C.5: three responses on a 256-byte table, without Huffman, evicting', () => {
    decodesInSequence(
      256,
      [
        '4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32' +
          '3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
        '4803 3330 37c1 c0bf',
        '88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970' +
          '7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61' +
          '6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31',
      ],
      [response1, response2, response3],
      responseTables,
      responseTableSizes,
    );
  });

  it('C.6: three responses on a 256-byte table, with Huffman, evicting', () => {
    decodesInSequence(
      256,
      [
        '4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad' +
          '1718 63c7 8f0b 97c8 e9ae 82ae 43d3',
        '4883 640e ffc1 c0bf',
        '88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2' +
          'e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07',
      ],
      [response1, response2, response3],
      responseTables,
      responseTableSizes,
    );
  });
});

describe('HpackDecoder: the dynamic table', () => {
  it('reaches entries past index 127 with a multi-byte index', () => {
    const d = new HpackDecoder();
    const names = Array.from({ length: 100 }, (_, i) => `n${i}`);
    d.decode(Buffer.concat(names.map((name, i) => literalIndexed(name, `v${i}`))));
    // Index 62 is the newest (n99); index 62 + 99 = 161 the oldest (n0): 0xff then 161 - 127 = 34.
    expect(d.decode(Buffer.from([0xbe, 0xff, 34]))).toEqual(['n99', 'v99', 'n0', 'v0']);
    // A literal without indexing naming a dynamic entry by a multi-byte index: 0x0f 0x30 = 15 + 48 = 63 -> n98.
    expect(d.decode(Buffer.from([0x0f, 0x30, 0x01, 0x78]))).toEqual(['n98', 'x']);
  });

  it('an entry larger than the table empties it and is not added (4.4)', () => {
    const d = new HpackDecoder(100);
    d.decode(literalIndexed('a', 'b'));
    expect(d.dynamicTableSize).toBe(34);
    expect(d.decode(literalIndexed('big', 'x'.repeat(70)))).toEqual(['big', 'x'.repeat(70)]);
    expect(d.dynamicTable()).toEqual([]);
    expect(d.dynamicTableSize).toBe(0);
  });

  it('a size update at the start shrinks the table, evicting the oldest entries', () => {
    const d = new HpackDecoder();
    d.decode(Buffer.concat([literalIndexed('a', '1'), literalIndexed('b', '2'), literalIndexed('c', '3')]));
    // 3 entries of 34 bytes; an update to 78 keeps the two newest.
    expect(d.decode(Buffer.from([0x3f, 0x2f /* 31 + 47 = 78 */, 0x82]))).toEqual([':method', 'GET']);
    expect(d.dynamicTable()).toEqual([
      ['c', '3'],
      ['b', '2'],
    ]);
    // Several updates may open a block (4.2): 0 empties the table, then back to 4096.
    expect(d.decode(Buffer.from([0x20, 0x3f, 0xe1, 0x1f /* 31 + 97 + 31 * 128 = 4096 */, 0x82]))).toEqual([':method', 'GET']);
    expect(d.dynamicTable()).toEqual([]);
    d.decode(literalIndexed('d', '4'));
    expect(d.dynamicTable()).toEqual([['d', '4']]);
  });

  it('a block may be empty', () => {
    expect(new HpackDecoder().decode(Buffer.alloc(0))).toEqual([]);
  });
});

describe('HpackDecoder refuses malformed blocks with HpackError', () => {
  const refuses = (block: Buffer | string, tableSize?: number, message?: RegExp): void => {
    const d = new HpackDecoder(tableSize);
    const bytes = typeof block === 'string' ? hex(block) : block;
    expect(() => d.decode(bytes)).toThrow(HpackError);
    if (message) expect(() => new HpackDecoder(tableSize).decode(bytes)).toThrow(message);
    // After a failure the decoder is done: even a good block is refused.
    expect(() => d.decode(hex('82'))).toThrow(HpackError);
  };

  it('index 0', () => refuses('80'));
  it('an index past the static table when the dynamic table is empty', () => refuses('be'));
  it('an index past the dynamic table', () => refuses(Buffer.concat([literalIndexed('a', 'b'), hex('bf')])));
  it('a literal naming an index past the tables', () => refuses('7f 00 01 61'));
  it('a truncated integer', () => {
    refuses('ff');
    refuses('ff 80');
    refuses('3f e1');
  });
  // Any such index is past the tables too: the message shows which check refused it.
  it('an integer above 2^31 - 1', () => refuses('ff ff ff ff ff 0f', undefined, /above 2\^31/));
  it('an integer with more than 5 continuation bytes, even of a small value', () => {
    expect(new HpackDecoder().decode(hex('3f e1 1f'))).toEqual([]); // size update to 4096
    refuses('3f e1 9f 80 80 80 00'); // 4096 again, padded with zero groups to 6 continuation bytes
  });
  it('a string length past the end of the block', () => {
    refuses('400a 6375 7374');
    refuses('0003 6162 63 05 6162');
  });
  it('a block that ends before a string', () => {
    refuses('40');
    refuses('41');
    refuses('0003 6162 63');
  });
  it('a Huffman string with EOS inside', () => refuses(literalWithHuffmanValue('x', bits('00011' + '1'.repeat(30) + '11111'))));
  it('Huffman padding of 8 or more bits', () => {
    refuses(literalWithHuffmanValue('x', Buffer.from([0xff])));
    refuses(literalWithHuffmanValue('x', Buffer.from([0x1f, 0xff])));
  });
  it('Huffman padding that is not all one-bits', () => refuses(literalWithHuffmanValue('x', Buffer.from([0x18]))));
  it('a table size update above SETTINGS_HEADER_TABLE_SIZE', () => {
    refuses('3f e2 1f'); // 4097 > 4096
    refuses('3f 02', 32); // 31 + 2 = 33 > 32
  });
  it('a table size update after a header field', () => refuses('82 20'));
});

describe('encodeHeaders', () => {
  it('encodes literals without indexing that a fresh decoder reads back', () => {
    const r = rng(seed ^ 0x5eed);
    const int = (n: number): number => Math.floor(r() * n);
    for (let round = 0; round < 200; round++) {
      const pairs: Array<[string, string]> = Array.from({ length: int(12) }, () => {
        const name = 'x-' + Array.from({ length: 1 + int(20) }, () => 'abcdefghijklmnopqrstuvwxyz0123456789-_'[int(38)]).join('');
        const length = [int(10), 120 + int(20), int(400), 16_380 + int(10)][int(4)];
        const value = String.fromCharCode(...Array.from({ length }, () => int(256)));
        return [name, value];
      });
      const block = encodeHeaders(pairs);
      const d = new HpackDecoder();
      expect(pairsOf(d.decode(block)), seedNote).toEqual(pairs);
      expect(d.dynamicTableSize).toBe(0);
    }
  });

  it("writes C.2.3's field as a literal without indexing (0000 where C.2.3 has 0001)", () => {
    expect(encodeHeaders([['password', 'secret']])).toEqual(hex('0008 7061 7373 776f 7264 0673 6563 7265 74'));
  });

  it('refuses names with capitals and strings beyond latin1', () => {
    expect(() => encodeHeaders([['Content-Type', 'x']])).toThrow(RangeError);
    expect(() => encodeHeaders([['x', '\u0100']])).toThrow(RangeError);
    expect(() => encodeHeaders([['', 'x']])).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------------------------
// Against nghttp2: Node's HTTP/2 client talks to a raw TCP server that reads the frames itself.

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER_BYTES = 9;
const FRAME_HEADERS = 0x1;
const FRAME_SETTINGS = 0x4;
const FRAME_CONTINUATION = 0x9;
const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

interface RawServer {
  port: number;
  /** CONTINUATION frames received so far, on all connections. */
  continuationFrames(): number;
  close(): void;
}

/**
 * A TCP server that speaks just enough HTTP/2: reads the preface, answers SETTINGS, and hands
 * each stream's complete header block (HEADERS + CONTINUATIONs, padding and priority removed)
 * to onBlock, in the order they arrive on the connection.
 */
async function rawServer(onBlock: (streamId: number, block: Buffer, socket: net.Socket) => void): Promise<RawServer> {
  const sockets = new Set<net.Socket>();
  let continuationFrames = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let pending = Buffer.alloc(0);
    let prefaceRead = false;
    let fragments: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      if (!prefaceRead) {
        if (pending.length < PREFACE.length) return;
        if (!pending.subarray(0, PREFACE.length).equals(PREFACE)) throw new Error('not the HTTP/2 preface');
        pending = pending.subarray(PREFACE.length);
        prefaceRead = true;
      }
      while (pending.length >= FRAME_HEADER_BYTES) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < FRAME_HEADER_BYTES + length) break;
        const type = pending[3];
        const flags = pending[4];
        const streamId = pending.readUInt32BE(5) & 0x7fffffff;
        let payload = pending.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length);
        pending = pending.subarray(FRAME_HEADER_BYTES + length);
        if (type === FRAME_SETTINGS && (flags & FLAG_ACK) === 0) {
          socket.write(frame(FRAME_SETTINGS, 0, 0, Buffer.alloc(0)));
          socket.write(frame(FRAME_SETTINGS, FLAG_ACK, 0, Buffer.alloc(0)));
        } else if (type === FRAME_HEADERS || type === FRAME_CONTINUATION) {
          if (type === FRAME_HEADERS) {
            if (flags & FLAG_PADDED) payload = payload.subarray(1, payload.length - payload[0]);
            if (flags & FLAG_PRIORITY) payload = payload.subarray(5);
            fragments = [];
          } else {
            continuationFrames++;
          }
          fragments.push(payload);
          if (flags & FLAG_END_HEADERS) onBlock(streamId, Buffer.concat(fragments), socket);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    continuationFrames: () => continuationFrames,
    close() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

describe('HpackDecoder against Node http2 (nghttp2) as the encoder', () => {
  const cleanups: Array<() => void> = [];
  afterEach(() => {
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  it(`decodes every request block as sent, through the dynamic table (${seedNote})`, async () => {
    const r = rng(seed ^ 0xc0ffee);
    const int = (n: number): number => Math.floor(r() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
    const text = (length: number, from: number, to: number): string =>
      String.fromCharCode(...Array.from({ length }, () => from + int(to - from + 1)));
    const printable = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i));
    const shuffled = (xs: string[]): string => {
      const ys = [...xs];
      for (let i = ys.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [ys[i], ys[j]] = [ys[j], ys[i]];
      }
      return ys.join('');
    };

    const decoder = new HpackDecoder();
    const decoded = new Map<number, string[]>();
    const blockBytes = new Map<number, number>();
    let requestsSeen = 0;
    let allSeen: () => void = () => {};
    const allArrived = new Promise<void>((resolve) => (allSeen = resolve));
    let expectedRequests = Infinity;
    let decodeError: unknown;
    const server = await rawServer((streamId, block) => {
      try {
        decoded.set(streamId, decoder.decode(block));
        blockBytes.set(streamId, block.length);
      } catch (err) {
        decodeError = err;
      }
      if (++requestsSeen >= expectedRequests) allSeen();
    });
    cleanups.push(() => server.close());

    const authority = `127.0.0.1:${server.port}`;
    const client = http2.connect(`http://${authority}`);
    client.on('error', () => {});
    cleanups.push(() => client.destroy());

    const repeated = text(150 + int(100), 0x20, 0x7e); // over 127 bytes: multi-byte lengths; sent every time
    const paths = ['/etcdserverpb.KV/Put', '/etcdserverpb.KV/Range', '/etcdserverpb.Watch/Watch', '/etcdserverpb.Lease/LeaseGrant'];
    const requests: Array<Array<[string, string]>> = [];
    const send = (pairs: Array<[string, string]>, sensitive: string[] = []): void => {
      requests.push(pairs);
      const headers: http2.OutgoingHttpHeaders = {};
      for (const [name, value] of pairs) {
        const prior = headers[name];
        headers[name] = prior === undefined ? value : ([] as string[]).concat(prior as string | string[], value);
      }
      const marked = Object.assign(headers, { [http2.sensitiveHeaders]: sensitive });
      const req = client.request(marked);
      req.on('error', () => {});
      req.end();
    };
    const grpcRequest = (): Array<[string, string]> => [
      [':method', 'POST'],
      [':scheme', 'http'],
      [':authority', authority],
      [':path', pick(paths)],
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
      ['grpc-accept-encoding', 'identity,deflate,gzip'],
      ['user-agent', 'grpc-node-js/1.14.7'],
      ['x-repeated', repeated],
    ];

    const ROUNDS = 24;
    for (let i = 0; i < ROUNDS; i++) {
      const pairs = grpcRequest();
      pairs.push(['grpc-timeout', `${1 + int(99_999_999)}m`]);
      pairs.push(['x-printable', shuffled(printable)]); // every byte 0x20-0x7e, fresh each time
      pairs.push(['x-latin1', text(1 + int(60), 0x80, 0xff) + text(int(20), 0x20, 0xff)]);
      if (int(2) === 0) pairs.push(['x-long', text(128 + int(3000), 0x21, 0x7e)]);
      if (int(3) === 0) pairs.push(['x-multi', text(1 + int(10), 0x21, 0x7e)], ['x-multi', text(1 + int(10), 0x21, 0x7e)]);
      const sensitive: string[] = [];
      if (int(3) === 0) {
        pairs.push(['authorization', `Bearer ${text(20 + int(40), 0x21, 0x7e)}`]);
        sensitive.push('authorization');
      }
      send(pairs, sensitive);
    }
    // Over the default 16 KB frame: nghttp2 continues the block in CONTINUATION frames.
    send([...grpcRequest(), ['x-huge', text(20_000, 0x20, 0x7e)]]);
    // Twice the same, all of it indexable: the second block is table references.
    const same: Array<[string, string]> = [...grpcRequest(), ['grpc-timeout', '5S']];
    send(same);
    send(same);
    expectedRequests = requests.length;
    if (requestsSeen >= expectedRequests) allSeen();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${requestsSeen} of ${expectedRequests} header blocks arrived (${seedNote})`)), 20_000);
    });
    await Promise.race([allArrived, timedOut]).finally(() => clearTimeout(timer));

    expect(decodeError, seedNote).toBeUndefined();
    expect(server.continuationFrames(), 'the 20 KB block came in CONTINUATION frames').toBeGreaterThan(0);
    const pseudoFirst = (fields: string[]): boolean => {
      const names = pairsOf(fields).map(([name]) => name);
      const firstRegular = names.findIndex((name) => !name.startsWith(':'));
      return firstRegular === -1 || names.slice(firstRegular).every((name) => !name.startsWith(':'));
    };
    const multiset = (pairs: Array<[string, string]>): string[] => pairs.map((pair) => JSON.stringify(pair)).sort();
    requests.forEach((pairs, i) => {
      const streamId = 2 * i + 1;
      const fields = decoded.get(streamId);
      expect(fields, `stream ${streamId} (${seedNote})`).toBeDefined();
      expect(pseudoFirst(fields!), `pseudo-headers first on stream ${streamId} (${seedNote})`).toBe(true);
      expect(multiset(pairsOf(fields!)), `stream ${streamId} (${seedNote})`).toEqual(multiset(pairs));
    });
    // nghttp2 did index: the repeated header is in the table, and the repeat of a request is
    // at most two bytes a field (:path is never indexed by nghttp2, but its name is).
    expect(decoder.dynamicTable().some(([name, value]) => name === 'x-repeated' && value === repeated), seedNote).toBe(true);
    const lastStream = 2 * requests.length - 1;
    expect(blockBytes.get(lastStream)!, seedNote).toBeLessThan(2 * same.length + same[3][1].length);
  });

  it('Node accepts response headers written by encodeHeaders', async () => {
    const extra = 'é'.repeat(3) + ' \t!~'.repeat(40); // latin1 and a value over 127 bytes
    const block = encodeHeaders([
      [':status', '200'],
      ['content-type', 'application/grpc'],
      ['grpc-status', '0'],
      ['x-extra', extra],
    ]);
    const server = await rawServer((streamId, _request, socket) => {
      socket.write(frame(FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, streamId, block));
    });
    cleanups.push(() => server.close());
    const client = http2.connect(`http://127.0.0.1:${server.port}`);
    client.on('error', () => {});
    cleanups.push(() => client.destroy());
    const req = client.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Range' });
    req.on('error', () => {});
    req.end();
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) => req.on('response', resolve));
    expect(headers[':status']).toBe(200);
    expect(headers['content-type']).toBe('application/grpc');
    expect(headers['grpc-status']).toBe('0');
    expect(headers['x-extra']).toBe(extra);
  });
});

describe('HpackConstants (the blocks a server sends on every call, indexed after first use)', () => {
  const blocks = [
    [
      [':status', '200'],
      ['content-type', 'application/grpc+proto'],
      ['grpc-encoding', 'identity'],
    ],
    [
      ['grpc-status', '0'],
      ['grpc-message', ''],
    ],
  ] as const;
  const flat = (i: number): string[] => blocks[i].flatMap(([n, v]) => [n, v]);

  it('decodes to the same fields in any order of use; once both were sent, each field is one byte', () => {
    const enc = new HpackConstants(blocks);
    const dec = new HpackDecoder();
    const order = [1, 0, 0, 1, 0, 1, 1, 0];
    const sizes: number[] = [];
    for (const i of order) {
      const b = enc.block(i);
      sizes.push(b.length);
      expect(dec.decode(b)).toEqual(flat(i));
    }
    // From the third block on both are in the table: 3 and 2 bytes.
    expect(sizes.slice(3)).toEqual([2, 3, 2, 2, 3]);
    expect(dec.dynamicTable().length).toBe(4); // :status 200 is in the static table
  });

  it('a peer that shrinks its table gets a size update to 0 first, then literals that index nothing', () => {
    const enc = new HpackConstants(blocks);
    const dec = new HpackDecoder();
    expect(dec.decode(enc.block(0))).toEqual(flat(0));
    enc.setPeerTableSize(0);
    expect(enc.takeSizeUpdate()).toBe(true);
    expect(enc.takeSizeUpdate()).toBe(false);
    expect(dec.decode(Buffer.concat([Buffer.of(0x20), enc.block(1)]))).toEqual(flat(1));
    expect(dec.dynamicTable()).toEqual([]);
    expect(dec.decode(enc.block(0))).toEqual(flat(0));
    expect(dec.dynamicTable()).toEqual([]);
  });
});
