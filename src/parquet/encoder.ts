// A Parquet encoder for rows of canonical text: one row group at a time, PLAIN pages, a Thrift footer.
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { SluiceError } from '../errors.js';
import type { CastType } from '../operators/cast-values.js';
import type { Row } from '../row.js';
import { ThriftWriter, T } from './thrift.js';

/** A column's compression in the file. */
export type ParquetCodec = 'zstd' | 'snappy' | 'gzip' | 'none';

/** A column of the file: its name and the type its values were cast to (`string` when uncast). */
export interface ParquetColumn {
  name: string;
  type: CastType;
}

const CODEC_ID: Record<ParquetCodec, number> = { none: 0, snappy: 1, gzip: 2, zstd: 6 };
// physical types
const BOOLEAN = 0;
const INT32 = 1;
const INT64 = 2;
const DOUBLE = 5;
const BYTE_ARRAY = 6;
const PHYSICAL: Record<CastType, number> = { string: BYTE_ARRAY, integer: INT64, number: DOUBLE, boolean: BOOLEAN, date: INT32, timestamp: INT64 };
const PLAIN = 0;
const RLE = 3;

/** The magic bytes a Parquet file starts and ends with. */
export const MAGIC = Buffer.from('PAR1');

type Compress = (data: Buffer) => Promise<Buffer>;

let zstd: Promise<(data: Uint8Array, level: number) => Uint8Array> | undefined;

/** The compressor of a codec; zstd's WebAssembly module is loaded on first use. */
function compressor(codec: ParquetCodec): Compress {
  switch (codec) {
    case 'none':
      return async (data) => data;
    case 'gzip': {
      const z = promisify(gzip);
      return (data) => z(data); // in the thread pool: the main thread goes on parsing
    }
    case 'snappy':
      return async (data) => {
        // a CommonJS module: bundled by esbuild, its exports are under default
        const m = (await import('snappyjs')) as { compress?: (b: Uint8Array) => Uint8Array; default?: { compress: (b: Uint8Array) => Uint8Array } };
        const compress = (m.default?.compress ?? m.compress)!;
        const out = compress(data);
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      };
    case 'zstd':
      return async (data) => {
        zstd ??= import('@bokuweb/zstd-wasm').then(async (m) => {
          await m.init();
          return m.compress;
        });
        const out = (await zstd)(data, 3);
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      };
  }
}

interface ChunkMeta {
  column: ParquetColumn;
  values: number;
  nulls: number;
  offset: number;
  uncompressed: number;
  compressed: number;
}

interface GroupMeta {
  chunks: ChunkMeta[];
  rows: number;
  offset: number;
}

/**
 * Encodes rows into Parquet: `append` adds rows to the current row group (each column's values encoded
 * as they come, into its own buffer: no row is kept), `rowGroup` gives the group's bytes (to be written at
 * `offset`), `footer` the file's end once all groups are written. Every column is OPTIONAL (an empty
 * field is a null), PLAIN-encoded in one data page per column chunk. Only the footer's metadata (a few
 * dozen bytes per column chunk) is kept between groups.
 */
export class ParquetEncoder {
  private readonly groups: GroupMeta[] = [];
  private readonly compress: Compress;
  private readonly builders: ColumnBuilder[];
  private rows = 0;
  /** Rows in the current row group. */
  pending = 0;

  /** `groupRows`: the rows a row group will hold (a larger group is still right, with one more copy). */
  constructor(
    readonly columns: readonly ParquetColumn[],
    private readonly codec: ParquetCodec,
    groupRows: number,
  ) {
    this.compress = compressor(codec);
    this.builders = columns.map((col, c) => new ColumnBuilder(col, c, groupRows));
  }

  /** Adds `rows[start..end)` to the current row group. */
  append(rows: readonly Row[], start: number, end: number): void {
    for (const b of this.builders) b.append(rows, start, end);
    this.pending += end - start;
  }

  /** The current row group as bytes to write at file `offset`; the next rows start a new one. */
  async rowGroup(offset: number): Promise<Buffer> {
    const count = this.pending;
    const bodies = this.builders.map((b) => b.take());
    this.pending = 0;
    const compressed = await Promise.all(bodies.map((b) => this.compress(b.body)));
    const parts: Buffer[] = [];
    const metas: ChunkMeta[] = [];
    let at = offset;
    for (let c = 0; c < this.columns.length; c++) {
      const { body, nulls } = bodies[c]!;
      const data = compressed[c]!;
      const header = pageHeader(count, body.length, data.length);
      metas.push({
        column: this.columns[c]!,
        values: count,
        nulls,
        offset: at,
        uncompressed: header.length + body.length,
        compressed: header.length + data.length,
      });
      parts.push(header, data);
      at += header.length + data.length;
    }
    this.groups.push({ chunks: metas, rows: count, offset });
    this.rows += count;
    return Buffer.concat(parts);
  }

  /** FileMetaData, its length and the closing magic. */
  footer(): Buffer {
    const w = new ThriftWriter();
    w.begin();
    w.i32(1, 1); // version
    w.list(2, T.STRUCT, this.columns.length + 1);
    w.begin();
    w.binary(4, 'schema');
    w.i32(5, this.columns.length);
    w.end();
    for (const col of this.columns) schemaElement(w, col);
    w.i64(3, this.rows);
    w.list(4, T.STRUCT, this.groups.length);
    for (const g of this.groups) {
      w.begin();
      w.list(1, T.STRUCT, g.chunks.length);
      let uncompressed = 0;
      let compressed = 0;
      for (const ch of g.chunks) {
        columnChunk(w, ch, CODEC_ID[this.codec]);
        uncompressed += ch.uncompressed;
        compressed += ch.compressed;
      }
      w.i64(2, uncompressed); // total_byte_size
      w.i64(3, g.rows);
      w.i64(5, g.offset); // file_offset
      w.i64(6, compressed); // total_compressed_size
      w.end();
    }
    w.binary(6, 'sluice');
    w.end();
    const meta = w.bytes();
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(meta.length);
    return Buffer.concat([meta, len, MAGIC]);
  }
}

function schemaElement(w: ThriftWriter, col: ParquetColumn): void {
  w.begin();
  w.i32(1, PHYSICAL[col.type]);
  w.i32(3, 1); // OPTIONAL
  w.binary(4, col.name);
  if (col.type === 'string') w.i32(6, 0); // UTF8
  if (col.type === 'date') w.i32(6, 6); // DATE
  if (col.type === 'timestamp') w.i32(6, 10); // TIMESTAMP_MICROS
  if (col.type === 'string') {
    w.begin(10);
    w.begin(1); // STRING
    w.end();
    w.end();
  } else if (col.type === 'date') {
    w.begin(10);
    w.begin(6); // DATE
    w.end();
    w.end();
  } else if (col.type === 'timestamp') {
    w.begin(10);
    w.begin(8); // TIMESTAMP
    w.bool(1, true); // isAdjustedToUTC
    w.begin(2); // unit
    w.begin(2); // MICROS
    w.end();
    w.end();
    w.end();
    w.end();
  }
  w.end();
}

function columnChunk(w: ThriftWriter, ch: ChunkMeta, codec: number): void {
  w.begin();
  w.i64(2, ch.offset); // file_offset
  w.begin(3); // meta_data
  w.i32(1, PHYSICAL[ch.column.type]);
  w.list(2, T.I32, 2);
  w.listI32(PLAIN);
  w.listI32(RLE);
  w.list(3, T.BINARY, 1);
  w.listString(ch.column.name);
  w.i32(4, codec);
  w.i64(5, ch.values);
  w.i64(6, ch.uncompressed);
  w.i64(7, ch.compressed);
  w.i64(9, ch.offset); // data_page_offset
  w.begin(12); // statistics
  w.i64(3, ch.nulls); // null_count
  w.end();
  w.end();
  w.end();
}

function pageHeader(values: number, uncompressed: number, compressed: number): Buffer {
  const w = new ThriftWriter();
  w.begin();
  w.i32(1, 0); // DATA_PAGE
  w.i32(2, uncompressed);
  w.i32(3, compressed);
  w.begin(5);
  w.i32(1, values);
  w.i32(2, PLAIN);
  w.i32(3, RLE); // definition levels
  w.i32(4, RLE); // repetition levels (none: every column is flat)
  w.end();
  w.end();
  return Buffer.from(w.bytes());
}

function varint(out: number[], n: number): void {
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
}

/**
 * One column's values in the current row group, PLAIN-encoded as rows are appended: a bit per row for
 * its definition level, and the values' bytes in a buffer that grows by doubling.
 */
class ColumnBuilder {
  private defined = new Uint8Array(1024);
  /**
   * Room before the values for the page's definition levels and their length, for a full row group (a
   * multiple of 8, so typed views stay aligned): `take` writes them there and copies nothing.
   */
  private readonly head: number;
  // not from the shared pool: typed views on it need its start aligned
  private data: Buffer;
  /** Where the values end in `data`. */
  private size: number;
  private count = 0;
  /** Booleans: values so far (bits are packed by value index, not row). */
  private bits = 0;

  constructor(
    private readonly column: ParquetColumn,
    private readonly index: number,
    groupRows: number,
  ) {
    this.head = Math.ceil((4 + 10 + Math.ceil(groupRows / 8)) / 8) * 8;
    this.data = Buffer.alloc(this.head + 1024);
    this.size = this.head;
  }

  private room(bytes: number): void {
    if (this.size + bytes <= this.data.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(this.data.length * 2, this.size + bytes));
    this.data.copy(next, 0, 0, this.size);
    this.data = next;
  }

  append(rows: readonly Row[], start: number, end: number): void {
    const n = end - start;
    if (this.count + n > this.defined.length * 8) {
      const next = new Uint8Array(Math.max(this.defined.length * 2, Math.ceil((this.count + n) / 8)));
      next.set(this.defined);
      this.defined = next;
    }
    const type = this.column.type;
    if (type === 'string') {
      let chars = 0;
      for (let r = start; r < end; r++) chars += rows[r]![this.index]?.length ?? 0;
      this.room(4 * n + 3 * chars);
      this.size = appendStrings(this.data, this.size, this.defined, this.count, rows, start, end, this.index);
    } else if (type === 'boolean') {
      this.room(Math.ceil(n / 8) + 1);
      this.bits = appendBooleans(this.data, this.head, this.bits, this.defined, this.count, rows, start, end, this.index, this.column);
      this.size = this.head + Math.ceil(this.bits / 8);
    } else if (type === 'date') {
      this.room(4 * n);
      this.size = appendDates(this.data, this.size, this.defined, this.count, rows, start, end, this.index, this.column);
    } else {
      this.room(8 * n);
      const f = type === 'number' ? appendDoubles : type === 'integer' ? appendIntegers : appendTimestamps;
      this.size = f(this.data, this.size, this.defined, this.count, rows, start, end, this.index, this.column);
    }
    this.count += n;
  }

  /**
   * The page body (length-prefixed definition levels, then the values); the builder starts over. The
   * body is a view of the builder's buffer: it must be used (compressed, copied) before the next append.
   */
  take(): { body: Buffer; nulls: number } {
    const head: number[] = [];
    const count = this.count;
    const nulls = count - countBits(this.defined, count);
    let levels: Uint8Array;
    if (nulls === 0) {
      // one RLE run of 1s (bit width 1)
      varint(head, count * 2);
      head.push(1);
      levels = Uint8Array.from(head);
    } else {
      // bit-packed groups of 8, the bits as appended
      const groups = Math.ceil(count / 8);
      varint(head, groups * 2 + 1);
      levels = new Uint8Array(head.length + groups);
      levels.set(head);
      levels.set(this.defined.subarray(0, groups), head.length);
    }
    let body: Buffer;
    const from = this.head - levels.length - 4;
    if (from >= 0) {
      this.data.writeUInt32LE(levels.length, from);
      this.data.set(levels, from + 4);
      body = this.data.subarray(from, this.size);
    } else {
      // more rows than a row group was said to hold: copied after the levels
      body = Buffer.allocUnsafe(4 + levels.length + this.size - this.head);
      body.writeUInt32LE(levels.length, 0);
      body.set(levels, 4);
      this.data.copy(body, 4 + levels.length, this.head, this.size);
    }
    this.defined.fill(0, 0, Math.ceil(count / 8));
    this.size = this.head;
    this.count = 0;
    this.bits = 0;
    return { body, nulls };
  }
}

/** The set bits among the first `count` of a bitmap. */
function countBits(bits: Uint8Array, count: number): number {
  let n = 0;
  const full = count >> 3;
  for (let i = 0; i < full; i++) {
    let b = bits[i]!;
    b = b - ((b >> 1) & 0x55);
    b = (b & 0x33) + ((b >> 2) & 0x33);
    n += (b + (b >> 4)) & 0x0f;
  }
  for (let i = full * 8; i < count; i++) n += (bits[i >> 3]! >> (i & 7)) & 1;
  return n;
}

// One function per type, each called with the rows of one batch: its loop stays monomorphic. Each takes
// where the values end (`p`) and where the rows start in the definition bitmap (`at`), and returns `p`.

function appendStrings(out: Buffer, p: number, defined: Uint8Array, at: number, rows: readonly Row[], start: number, end: number, c: number): number {
  for (let r = start; r < end; r++, at++) {
    const v = rows[r]![c];
    if (v === undefined || v === '') continue;
    defined[at >> 3]! |= 1 << (at & 7);
    const len = v.length;
    const q = p + 4;
    let k = 0;
    for (; k < len; k++) {
      const code = v.charCodeAt(k);
      if (code >= 0x80) break;
      out[q + k] = code;
    }
    const bytes = k === len ? len : out.write(v, q, 'utf8');
    out[p] = bytes & 0xff;
    out[p + 1] = (bytes >> 8) & 0xff;
    out[p + 2] = (bytes >> 16) & 0xff;
    out[p + 3] = bytes >>> 24;
    p = q + bytes;
  }
  return p;
}

function appendBooleans(
  out: Buffer,
  base: number,
  i: number,
  defined: Uint8Array,
  at: number,
  rows: readonly Row[],
  start: number,
  end: number,
  c: number,
  col: ParquetColumn,
): number {
  for (let r = start; r < end; r++, at++) {
    const v = rows[r]![c];
    if (v === undefined || v === '') continue;
    defined[at >> 3]! |= 1 << (at & 7);
    if ((i & 7) === 0) out[base + (i >> 3)] = 0;
    if (v === 'true') out[base + (i >> 3)]! |= 1 << (i & 7);
    else if (v !== 'false') notCanonical(col, v);
    i++;
  }
  return i;
}

function appendDates(
  out: Buffer,
  p: number,
  defined: Uint8Array,
  at: number,
  rows: readonly Row[],
  start: number,
  end: number,
  c: number,
  col: ParquetColumn,
): number {
  const view = new Int32Array(out.buffer, out.byteOffset, out.length >> 2);
  for (let r = start; r < end; r++, at++) {
    const v = rows[r]![c];
    if (v === undefined || v === '') continue;
    defined[at >> 3]! |= 1 << (at & 7);
    const d = dateDays(v);
    if (d === undefined) notCanonical(col, v);
    view[p >> 2] = d;
    p += 4;
  }
  return p;
}

function appendDoubles(
  out: Buffer,
  p: number,
  defined: Uint8Array,
  at: number,
  rows: readonly Row[],
  start: number,
  end: number,
  c: number,
  col: ParquetColumn,
): number {
  const view = new Float64Array(out.buffer, out.byteOffset, out.length >> 3);
  for (let r = start; r < end; r++, at++) {
    const v = rows[r]![c];
    if (v === undefined || v === '') continue;
    defined[at >> 3]! |= 1 << (at & 7);
    const x = Number(v);
    if (Number.isNaN(x)) notCanonical(col, v);
    view[p >> 3] = x;
    p += 8;
  }
  return p;
}

function appendInt64(
  out: Buffer,
  p: number,
  defined: Uint8Array,
  at: number,
  rows: readonly Row[],
  start: number,
  end: number,
  c: number,
  col: ParquetColumn,
  parse: (v: string) => number | bigint | undefined,
): number {
  const view = new Int32Array(out.buffer, out.byteOffset, out.length >> 2);
  for (let r = start; r < end; r++, at++) {
    const v = rows[r]![c];
    if (v === undefined || v === '') continue;
    defined[at >> 3]! |= 1 << (at & 7);
    const x = parse(v);
    if (x === undefined) notCanonical(col, v);
    if (typeof x === 'bigint') out.writeBigInt64LE(x, p);
    else {
      const hi = Math.floor(x / 4294967296);
      view[p >> 2] = x - hi * 4294967296; // the low 32 bits (an Int32Array wraps)
      view[(p >> 2) + 1] = hi;
    }
    p += 8;
  }
  return p;
}

const appendIntegers: typeof appendDoubles = (out, p, defined, at, rows, start, end, c, col) =>
  appendInt64(out, p, defined, at, rows, start, end, c, col, integerValue);
const appendTimestamps: typeof appendDoubles = (out, p, defined, at, rows, start, end, c, col) =>
  appendInt64(out, p, defined, at, rows, start, end, c, col, timestampMicros);

function notCanonical(col: ParquetColumn, v: string): never {
  throw new SluiceError(
    'INTERNAL',
    `parquet: column ${JSON.stringify(col.name)} is cast to ${col.type} but holds ${JSON.stringify(v.slice(0, 40))} (did a step after cast change it?)`,
  );
}

const digit = (s: string, i: number): number => s.charCodeAt(i) - 48;
const num = (s: string, i: number, n: number): number => {
  let x = 0;
  for (let k = 0; k < n; k++) {
    const d = digit(s, i + k);
    if (d < 0 || d > 9) return Number.NaN;
    x = x * 10 + d;
  }
  return x;
};

/** An integer's value: a number when exact (up to 15 digits), else a bigint. */
function integerValue(v: string): number | bigint | undefined {
  if (v.length <= 15) {
    const x = Number(v);
    return Number.isInteger(x) ? x : undefined;
  }
  try {
    const b = BigInt(v);
    return b >= -(2n ** 63n) && b < 2n ** 63n ? b : undefined;
  } catch {
    return undefined;
  }
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function civilDays(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}

/** `YYYY-MM-DD` as days since the epoch. */
function dateDays(v: string): number | undefined {
  if (v.length !== 10 || v[4] !== '-' || v[7] !== '-') return undefined;
  const days = civilDays(num(v, 0, 4), num(v, 5, 2), num(v, 8, 2));
  return Number.isNaN(days) ? undefined : days;
}

/**
 * `YYYY-MM-DDTHH:MM:SS[.f][Z]` (cast's canonical forms) as microseconds since the epoch, UTC. A time
 * without a zone is taken as UTC; digits of the fraction past microseconds are dropped.
 */
function timestampMicros(v: string): number | bigint | undefined {
  if (v.length < 19 || v[4] !== '-' || v[7] !== '-' || v[10] !== 'T' || v[13] !== ':' || v[16] !== ':') return undefined;
  const days = civilDays(num(v, 0, 4), num(v, 5, 2), num(v, 8, 2));
  const secs = days * 86400 + num(v, 11, 2) * 3600 + num(v, 14, 2) * 60 + num(v, 17, 2);
  let i = 19;
  let micros = 0;
  if (v[i] === '.') {
    i++;
    let scale = 100000;
    for (; i < v.length && v.charCodeAt(i) >= 48 && v.charCodeAt(i) <= 57; i++) {
      micros += digit(v, i) * scale;
      scale /= 10;
    }
    micros = Math.floor(micros);
  }
  if (v[i] === 'Z') i++;
  if (i !== v.length || Number.isNaN(secs)) return undefined;
  // exact as a double within about 285 years of 1970; beyond, in bigint
  return Math.abs(secs) < 9e9 ? secs * 1e6 + micros : BigInt(secs) * 1000000n + BigInt(micros);
}
