/**
 * Hostile files made byte by byte for the tests: zip archives in torch.save's layout (with
 * compressed, oversized or overlapping records on request), pickles with memo cycles, deep
 * nesting and shared dicts, the legacy torch.save layout around a pickle, and indexed PNGs
 * whose rows use any of PNG's filters.
 */
import zlib from 'node:zlib';

/** A zip record: its name, bytes, and how it is stored. */
export interface ZipRecord {
  name: string;
  data: Buffer;
  /** Store it deflated (torch.save never does). */
  deflate?: boolean;
  /** Point the central directory at this other record's local header instead of a new one. */
  sameBytesAs?: string;
}

/** A zip file of records (stored unless asked), as torch.save lays them out. */
export function zipFile(records: ZipRecord[]): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  const offsets = new Map<string, { offset: number; crc: number; size: number; stored: number; method: number }>();
  let offset = 0;
  for (const r of records) {
    const name = Buffer.from(r.name);
    const shared = r.sameBytesAs === undefined ? undefined : offsets.get(r.sameBytesAs);
    let entry = shared;
    if (!entry) {
      const body = r.deflate ? zlib.deflateRawSync(r.data) : r.data;
      const local = Buffer.alloc(30);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(20, 4);
      local.writeUInt16LE(r.deflate ? 8 : 0, 8);
      local.writeUInt32LE(zlib.crc32(r.data), 14);
      local.writeUInt32LE(body.length, 18);
      local.writeUInt32LE(r.data.length, 22);
      local.writeUInt16LE(name.length, 26);
      entry = { offset, crc: zlib.crc32(r.data), size: r.data.length, stored: body.length, method: r.deflate ? 8 : 0 };
      locals.push(local, name, body);
      offset += 30 + name.length + body.length;
    }
    offsets.set(r.name, entry);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(entry.method, 10);
    c.writeUInt32LE(entry.crc, 16);
    c.writeUInt32LE(entry.stored, 20);
    c.writeUInt32LE(entry.size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(entry.offset, 42);
    central.push(c, name);
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(records.length, 8);
  end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** Pickle opcodes (protocol 2), enough to build dicts, lists and memo references. */
export const op = {
  proto: Buffer.from([0x80, 2]),
  stop: Buffer.from('.'),
  mark: Buffer.from('('),
  emptyDict: Buffer.from('}'),
  emptyList: Buffer.from(']'),
  append: Buffer.from('a'),
  pop: Buffer.from('0'),
  setitem: Buffer.from('s'),
  setitems: Buffer.from('u'),
  str(text: string): Buffer {
    const bytes = Buffer.from(text);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.length);
    return Buffer.concat([Buffer.from('X'), length, bytes]);
  },
  put(index: number): Buffer {
    const b = Buffer.alloc(5);
    b.write('r', 0);
    b.writeUInt32LE(index, 1);
    return b;
  },
  get(index: number): Buffer {
    const b = Buffer.alloc(5);
    b.write('j', 0);
    b.writeUInt32LE(index, 1);
    return b;
  },
};

/** A pickle of the given opcode bytes: PROTO 2, the body, STOP. */
export const pickle = (...body: Buffer[]) => Buffer.concat([op.proto, ...body, op.stop]);

/** {'a': itself}: a dict holding itself through the memo. */
export const selfDictPickle = () => pickle(op.emptyDict, op.put(0), op.str('a'), op.get(0), op.setitem);

/** A list nested depth deep: [[[...]]]. */
export function deepListPickle(depth: number): Buffer {
  return pickle(Buffer.alloc(depth, ']'), Buffer.alloc(depth - 1, 'a'));
}

/** A dict nested depth deep: {'k': {'k': {...}}}. */
export function deepDictPickle(depth: number): Buffer {
  const level = Buffer.concat([op.emptyDict, op.str('k')]);
  return pickle(Buffer.concat(Array.from({ length: depth }, () => level)), op.emptyDict, Buffer.alloc(depth, 's'));
}

/** levels of {'a': D, 'b': D} over one shared dict D: 2^levels paths to walk. */
export function sharedDictPickle(levels: number): Buffer {
  const parts = [op.emptyDict, op.put(0), op.pop];
  for (let i = 1; i <= levels; i++) {
    parts.push(op.emptyDict, op.mark, op.str('a'), op.get(i - 1), op.str('b'), op.get(i - 1), op.setitems, op.put(i));
    if (i < levels) parts.push(op.pop);
  }
  return pickle(...parts);
}

/** A torch.save zip holding data.pkl, version and byteorder, and more records (replacing those of the same name). */
export function torchZip(dataPkl: Buffer, more: ZipRecord[] = []): Buffer {
  const base: ZipRecord[] = [
    { name: 'archive/data.pkl', data: dataPkl },
    { name: 'archive/version', data: Buffer.from('3\n') },
    { name: 'archive/byteorder', data: Buffer.from('little') },
  ];
  return zipFile([...base.filter((r) => !more.some((m) => m.name === r.name)), ...more]);
}

/** A legacy (pre-1.6) torch.save file whose object is the pickle top and which has no storages. */
export function legacyFile(top: Buffer): Buffer {
  const magic = Buffer.from('6cfc9c46f9206aa85019', 'hex');
  const long1 = Buffer.concat([Buffer.from([0x8a, magic.length]), magic]);
  const protocol = Buffer.from([0x4d, 0xe9, 0x03]); // BININT2 1001
  return Buffer.concat([pickle(long1), pickle(protocol), pickle(op.emptyDict), top, pickle(op.emptyList)]);
}

/** One PNG chunk: length, type, body and the CRC of type and body. */
export function pngChunk(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([head.subarray(4), body])));
  return Buffer.concat([head, body, crc]);
}

/** PNG's Paeth predictor, as the spec defines it. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/**
 * An 8-bit indexed PNG of rows of palette indices; row y is stored with filter type
 * filters[y % filters.length] (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth). `imageData`
 * replaces the deflated rows when given (for files that lie about their contents).
 */
export function indexedPng(
  rows: readonly (readonly number[])[],
  palette: readonly (readonly number[])[],
  filters: readonly number[] = [0],
  imageData?: Buffer,
): Buffer {
  const [height, width] = [rows.length, rows[0].length];
  const filtered = rows.flatMap((row, y) => {
    const up = y > 0 ? rows[y - 1] : new Array<number>(width).fill(0);
    const filter = filters[y % filters.length];
    const predict = (x: number) => {
      const [left, corner] = [x > 0 ? row[x - 1] : 0, x > 0 ? up[x - 1] : 0];
      return [0, left, up[x], Math.floor((left + up[x]) / 2), paeth(left, up[x], corner)][filter];
    };
    return [filter, ...row.map((v, x) => (v - predict(x)) & 0xff)];
  });
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 3, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('PLTE', Buffer.from(palette.flat())),
    pngChunk('IDAT', imageData ?? zlib.deflateSync(Buffer.from(filtered))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}
