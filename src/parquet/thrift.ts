// The Thrift compact protocol, write side only: what a Parquet page header and file footer are made of.

/** Compact protocol field types. */
export const T = { TRUE: 1, FALSE: 2, I32: 5, I64: 6, BINARY: 8, LIST: 9, STRUCT: 12 } as const;

/** A growable byte buffer writing compact-protocol values (integers as zigzag varints; sizes < 2^53). */
export class ThriftWriter {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;
  private last: number[] = [];
  private lastId = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  /** An unsigned varint of a non-negative integer below 2^53. */
  varint(n: number): void {
    this.ensure(10);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  private zigzag(n: number): void {
    this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
  }

  /** A field header; booleans carry their value in the type. */
  field(id: number, type: number): void {
    const delta = id - this.lastId;
    if (delta > 0 && delta <= 15) this.byte((delta << 4) | type);
    else {
      this.byte(type);
      this.zigzag(id);
    }
    this.lastId = id;
  }

  i32(id: number, v: number): void {
    this.field(id, T.I32);
    this.zigzag(v);
  }

  i64(id: number, v: number): void {
    this.field(id, T.I64);
    this.zigzag(v);
  }

  bool(id: number, v: boolean): void {
    this.field(id, v ? T.TRUE : T.FALSE);
  }

  binary(id: number, s: string): void {
    this.field(id, T.BINARY);
    this.rawString(s);
  }

  private rawString(s: string): void {
    const n = Buffer.byteLength(s);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos);
  }

  /** Opens a struct (as field `id`, or as a list element when `id` is undefined); close with `end`. */
  begin(id?: number): void {
    if (id !== undefined) this.field(id, T.STRUCT);
    this.last.push(this.lastId);
    this.lastId = 0;
  }

  end(): void {
    this.byte(0);
    this.lastId = this.last.pop() ?? 0;
  }

  /** A list header of `size` elements of `type`. */
  list(id: number, type: number, size: number): void {
    this.field(id, T.LIST);
    if (size < 15) this.byte((size << 4) | type);
    else {
      this.byte(0xf0 | type);
      this.varint(size);
    }
  }

  /** List elements. */
  listI32(v: number): void {
    this.zigzag(v);
  }

  listString(s: string): void {
    this.rawString(s);
  }

  /** The bytes written so far. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
