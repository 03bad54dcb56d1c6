// The JSON lines reader: UTF-8 bytes in, one record per line out. The header is the keys of the first
// object (or the columns given); each object becomes its values in header order, as text: a string as
// itself, null or a missing key as an empty cell, a number, boolean or nested value as its JSON text exactly
// as the file has it. A line that is not a JSON object is rejected with its line number and bytes.
import { isUtf8 } from 'node:buffer';
import { DEFAULT_MAX_RECORD_SIZE, type RecordHandler } from '../csv/record-reader.js';
import { SluiceError } from '../errors.js';

export interface NdjsonReadOptions {
  /** The header; default the keys of the first object. */
  columns?: readonly string[];
  /** A line longer than this many bytes is rejected (CSV_MAX_RECORD_SIZE) without being held whole. */
  maxRecordSize?: number;
  /** A key an object has that the header does not: counted, not silently dropped. */
  onExtraKey?: (key: string) => void;
}

const NL = 0x0a;
const CR = 0x0d;

export class NdjsonReader {
  private header: string[] | undefined;
  private headerSent = false;
  private index = new Map<string, number>();
  /** The bytes of the current line so far (it spans chunks). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The current line is longer than maxRecordSize: its first bytes are kept, the rest skipped. */
  private oversized = false;
  private line = 1;
  private first = true;
  private readonly max: number;

  constructor(
    private readonly handler: RecordHandler,
    private readonly options: NdjsonReadOptions = {},
  ) {
    this.max = options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE;
    if (options.columns !== undefined) this.setHeader([...options.columns]);
  }

  write(chunk: Buffer): void {
    if (this.first && chunk.length > 0) {
      this.first = false;
      if (chunk.indexOf(0) !== -1) throw new SluiceError('BINARY_FILE', 'the file holds NUL bytes: it is binary, not JSON lines');
    }
    let from = 0;
    for (let nl = chunk.indexOf(NL, from); nl !== -1; nl = chunk.indexOf(NL, from)) {
      this.take(chunk.subarray(from, nl));
      this.endLine();
      from = nl + 1;
    }
    if (from < chunk.length) this.take(chunk.subarray(from));
  }

  end(): void {
    if (this.pendingBytes > 0 || this.oversized) this.endLine();
  }

  private take(piece: Buffer): void {
    if (this.oversized) return;
    if (this.pendingBytes + piece.length > this.max) {
      const room = this.max - this.pendingBytes;
      if (room > 0) this.pending.push(piece.subarray(0, room));
      this.pendingBytes = this.max;
      this.oversized = true;
      return;
    }
    // a view of the chunk (sources hand out a new buffer per read), kept only while its line is open
    this.pending.push(piece);
    this.pendingBytes += piece.length;
  }

  private endLine(): void {
    const line = this.line++;
    let bytes = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.oversized) {
      this.oversized = false;
      this.handler.reject(
        line,
        'CSV_MAX_RECORD_SIZE',
        `the line is longer than input.maxRecordSize (${this.max} bytes); its first ${this.max} bytes are kept`,
        Buffer.from(bytes),
      );
      return;
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    // a byte order mark is not part of the first line
    if (line === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    if (isBlank(bytes)) return;
    if (!isUtf8(bytes)) {
      this.handler.reject(line, 'INVALID_UTF8', 'the line holds bytes that are not valid UTF-8', Buffer.from(bytes));
      return;
    }
    const text = bytes.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.handler.reject(line, 'JSON_INVALID', `not JSON: ${(err as Error).message}`, Buffer.from(bytes));
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      this.handler.reject(line, 'JSON_INVALID', `the line is ${what}, not a JSON object`, Buffer.from(bytes));
      return;
    }
    const obj = value as Record<string, unknown>;
    if (!this.headerSent) {
      if (this.header === undefined) this.setHeader(Object.keys(obj));
      this.headerSent = true;
      this.handler.record(this.header!, line);
    }
    this.handler.record(this.fieldsOf(obj, text), line);
  }

  private setHeader(names: string[]): void {
    this.header = names;
    this.index = new Map(names.map((n, i) => [n, i]));
  }

  /** The object's values in header order, as text. */
  private fieldsOf(obj: Record<string, unknown>, text: string): string[] {
    const header = this.header!;
    const fields = new Array<string>(header.length).fill('');
    let sources: Map<string, string> | undefined;
    for (const key in obj) {
      const at = this.index.get(key);
      if (at === undefined) {
        this.options.onExtraKey?.(key);
        continue;
      }
      const v = obj[key];
      if (typeof v === 'string') fields[at] = v;
      else if (v !== null && v !== undefined) {
        // a number, boolean or nested value: its text as the file has it (JSON.parse would round 2^53+1)
        sources ??= valueSources(text);
        fields[at] = sources.get(key) ?? JSON.stringify(v);
      }
    }
    return fields;
  }
}

function isBlank(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
}

/**
 * The source text of each top-level value of a JSON object already known to be valid (JSON.parse took it),
 * by key; a key given twice keeps its last value, as JSON.parse does.
 */
export function valueSources(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = text.indexOf('{') + 1;
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const stringEnd = (start: number): number => {
    // start is at the opening quote; returns the index after the closing one
    let j = start + 1;
    for (;;) {
      const q = text.indexOf('"', j);
      let backslashes = 0;
      for (let k = q - 1; text[k] === '\\'; k--) backslashes++;
      if (backslashes % 2 === 0) return q + 1;
      j = q + 1;
    }
  };
  for (;;) {
    ws();
    if (text[i] !== '"') break;
    const keyEnd = stringEnd(i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = keyEnd;
    ws();
    i++; // :
    ws();
    const start = i;
    const c = text[i];
    if (c === '"') i = stringEnd(i);
    else if (c === '{' || c === '[') {
      let depth = 0;
      while (i < text.length) {
        const d = text[i];
        if (d === '"') {
          i = stringEnd(i);
          continue;
        }
        if (d === '{' || d === '[') depth++;
        else if (d === '}' || d === ']') {
          depth--;
          if (depth === 0) {
            i++;
            break;
          }
        }
        i++;
      }
    } else {
      while (i < text.length && text[i] !== ',' && text[i] !== '}' && text[i] !== ' ' && text[i] !== '\t' && text[i] !== '\n' && text[i] !== '\r') i++;
    }
    out.set(key, text.slice(start, i));
    ws();
    if (text[i] !== ',') break;
    i++;
  }
  return out;
}
