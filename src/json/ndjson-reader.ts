// The JSON readers: UTF-8 bytes in, one record per object out, from JSON lines (an object per line) or a
// JSON document holding an array of objects (streamed element by element). The header is the keys of the
// first object (or the columns given); each object becomes its values in header order, as text: a string
// as itself, null or a missing key as an empty cell, a number, boolean or nested value as its JSON text
// exactly as the file has it. What is not an object is rejected with its line number and bytes.
import { isUtf8 } from 'node:buffer';
import { DEFAULT_MAX_RECORD_SIZE, type RecordHandler } from '../csv/record-reader.js';
import { SluiceError } from '../errors.js';

export interface NdjsonReadOptions {
  /** The header; default the keys of the first object. */
  columns?: readonly string[];
  /** A record longer than this many bytes is rejected (CSV_MAX_RECORD_SIZE) without being held whole. */
  maxRecordSize?: number;
  /** A key an object has that the header does not: counted, not silently dropped. */
  onExtraKey?: (key: string) => void;
}

const NL = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Objects to records: the header from the first, then each object's values in header order. */
class JsonRecords {
  private header: string[] | undefined;
  private headerSent = false;
  private index = new Map<string, number>();

  constructor(
    private readonly handler: RecordHandler,
    private readonly options: NdjsonReadOptions,
    /** What a record is called in messages: a line, an element. */
    private readonly unit: string,
  ) {
    if (options.columns !== undefined) this.setHeader([...options.columns]);
  }

  /** One record's bytes (no line terminator), starting at `line`. */
  take(line: number, bytes: Buffer): void {
    if (!isUtf8(bytes)) {
      this.handler.reject(line, 'INVALID_UTF8', `the ${this.unit} holds bytes that are not valid UTF-8`, Buffer.from(bytes));
      return;
    }
    this.takeText(line, bytes.toString('utf8'), bytes);
  }

  /** One record's text, decoded from valid UTF-8 (`bytes`: its bytes, if at hand; else made again from the text). */
  takeText(line: number, text: string, bytes?: Buffer): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.handler.reject(line, 'JSON_INVALID', `not JSON: ${(err as Error).message}`, rawOf(text, bytes));
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      this.handler.reject(line, 'JSON_INVALID', `the ${this.unit} is ${what}, not a JSON object`, rawOf(text, bytes));
      return;
    }
    const obj = value as Record<string, unknown>;
    if (!this.headerSent) {
      if (this.header === undefined) {
        // JavaScript lists integer-like keys ("2024") first, whatever their place: the file's order is the source's
        const keys = Object.keys(obj);
        this.setHeader(keys.some((k) => /^(?:0|[1-9]\d*)$/.test(k)) ? [...valueSources(text).keys()] : keys);
      }
      this.headerSent = true;
      this.handler.record(this.header!, line);
    }
    this.handler.record(this.fieldsOf(obj, text), line);
  }

  /** A record too large to hold: rejected with its first `max` bytes. */
  tooLarge(line: number, max: number, head: Buffer): void {
    this.handler.reject(
      line,
      'CSV_MAX_RECORD_SIZE',
      `the ${this.unit} is longer than input.maxRecordSize (${max} bytes); its first ${max} bytes are kept`,
      Buffer.from(head),
    );
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

/** The bytes of one record being gathered across chunks, bounded by maxRecordSize. */
class Gather {
  private pieces: Buffer[] = [];
  private bytes = 0;
  /** Longer than the bound: its first bytes are kept, the rest skipped. */
  oversized = false;

  constructor(readonly max: number) {}

  get empty(): boolean {
    return this.bytes === 0 && !this.oversized;
  }

  add(piece: Buffer): void {
    if (this.oversized || piece.length === 0) return;
    if (this.bytes + piece.length > this.max) {
      const room = this.max - this.bytes;
      if (room > 0) this.pieces.push(piece.subarray(0, room));
      this.bytes = this.max;
      this.oversized = true;
      return;
    }
    // a view of the chunk (sources hand out a new buffer per read), kept only while its record is open
    this.pieces.push(piece);
    this.bytes += piece.length;
  }

  /** The record's bytes so far; the gatherer is empty again. */
  take(): Buffer {
    const b = this.pieces.length === 1 ? this.pieces[0]! : Buffer.concat(this.pieces, this.bytes);
    this.pieces = [];
    this.bytes = 0;
    this.oversized = false;
    return b;
  }
}

function refuseBinary(chunk: Buffer, what: string): void {
  if (chunk.indexOf(0) !== -1) throw new SluiceError('BINARY_FILE', `the file holds NUL bytes: it is binary, not ${what}`);
}

/** A byte order mark is not part of the first record. */
function withoutBom(b: Buffer): Buffer {
  return b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? b.subarray(3) : b;
}

/** JSON lines: one object per line; blank lines are skipped. */
export class NdjsonReader {
  private readonly records: JsonRecords;
  private readonly gather: Gather;
  private line = 1;
  private first = true;

  constructor(handler: RecordHandler, options: NdjsonReadOptions = {}) {
    this.records = new JsonRecords(handler, options, 'line');
    this.gather = new Gather(options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE);
  }

  write(chunk: Buffer): void {
    if (this.first && chunk.length > 0) {
      this.first = false;
      refuseBinary(chunk, 'JSON lines');
    }
    const firstNl = chunk.indexOf(NL);
    if (firstNl === -1) {
      this.gather.add(chunk);
      return;
    }
    // the line a previous chunk left open ends here, from its bytes
    let from = 0;
    if (!this.gather.empty) {
      this.gather.add(chunk.subarray(0, firstNl));
      this.endLine();
      from = firstNl + 1;
    }
    // the whole lines of the chunk: decoded at once and cut as text (a Buffer view and a decode per line
    // cost more than parsing the line); bytes that are not UTF-8 send the lines back to the byte path
    const lastNl = chunk.lastIndexOf(NL);
    if (lastNl >= from) {
      const whole = chunk.subarray(from, lastNl + 1);
      if (isUtf8(whole)) this.lines(whole.toString('utf8'));
      else {
        for (let nl = chunk.indexOf(NL, from); nl !== -1 && nl <= lastNl; nl = chunk.indexOf(NL, from)) {
          this.gather.add(chunk.subarray(from, nl));
          this.endLine();
          from = nl + 1;
        }
      }
    }
    if (lastNl + 1 < chunk.length) this.gather.add(chunk.subarray(lastNl + 1));
  }

  /** Whole lines of valid UTF-8, each ending in a newline. */
  private lines(text: string): void {
    let from = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
      let end = nl;
      if (end > from && text.charCodeAt(end - 1) === CR) end--;
      const line = this.line++;
      let start = from;
      if (line === 1 && text.charCodeAt(start) === 0xfeff) start++;
      from = nl + 1;
      const s = text.slice(start, end);
      // a character is 1 to 3 bytes (a surrogate pair 4 for 2): counted only when it could matter
      if ((end - start) * 3 > this.gather.max && Buffer.byteLength(s) > this.gather.max) {
        this.records.tooLarge(line, this.gather.max, Buffer.from(s).subarray(0, this.gather.max));
        continue;
      }
      if (isBlankText(s)) continue;
      this.records.takeText(line, s);
    }
  }

  end(): void {
    if (!this.gather.empty) this.endLine();
  }

  private endLine(): void {
    const line = this.line++;
    const oversized = this.gather.oversized;
    let bytes = this.gather.take();
    if (oversized) {
      this.records.tooLarge(line, this.gather.max, bytes);
      return;
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    if (line === 1) bytes = withoutBom(bytes);
    if (isBlank(bytes)) return;
    this.records.take(line, bytes);
  }
}

/**
 * A JSON document holding an array of objects (`[{...}, {...}]`, on one line or many), streamed: each
 * element is gathered, bounded by maxRecordSize, and becomes a record as soon as it closes. A document that
 * is not an array fails the file (FORMAT_UNSUPPORTED); one that ends before its array closes (cut short)
 * fails it too (JSON_INCOMPLETE): its rows are not kept as if the file were whole.
 */
export class JsonArrayReader {
  private readonly records: JsonRecords;
  private readonly gather: Gather;
  private line = 1;
  /** before: the opening bracket not seen yet; between: between elements; in: inside one; after: done. */
  private state: 'before' | 'between' | 'in' | 'after' = 'before';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private elementLine = 1;
  /** Between elements: what may come next (after `[`: an element or `]`; after an element: `,` or `]`; after `,`: an element). */
  private expect: 'first' | 'comma' | 'element' = 'first';
  private first = true;

  constructor(handler: RecordHandler, options: NdjsonReadOptions = {}) {
    this.records = new JsonRecords(handler, options, 'element');
    this.gather = new Gather(options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE);
  }

  write(chunk: Buffer): void {
    if (this.first && chunk.length > 0) {
      this.first = false;
      refuseBinary(chunk, 'JSON');
    }
    let start = this.state === 'in' ? 0 : -1; // where the open element's bytes begin in this chunk
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === NL) this.line++;
      if (this.state === 'in') {
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (c === BACKSLASH) this.escaped = true;
          else if (c === QUOTE) this.inString = false;
          continue;
        }
        if (c === QUOTE) this.inString = true;
        else if (c === 0x7b || c === 0x5b) this.depth++;
        else if (c === 0x7d || c === 0x5d) {
          if (this.depth === 0) {
            // the array's closing bracket right after a scalar element
            this.gather.add(chunk.subarray(start, i));
            this.closeElement();
            start = -1;
            this.state = 'after';
            continue;
          }
          this.depth--;
          if (this.depth === 0) {
            this.gather.add(chunk.subarray(start, i + 1));
            this.closeElement();
            start = -1;
            this.state = 'between';
            this.expect = 'comma';
          }
        } else if (c === 0x2c && this.depth === 0) {
          this.gather.add(chunk.subarray(start, i));
          this.closeElement();
          start = -1;
          this.state = 'between';
          this.expect = 'element';
        }
        continue;
      }
      if (c === 0x20 || c === 0x09 || c === NL || c === CR) continue;
      if (this.state === 'before') {
        // a byte order mark (its bytes may come in separate chunks) before the document
        if (c === 0xef || c === 0xbb || c === 0xbf) continue;
        if (c !== 0x5b) throw new SluiceError('FORMAT_UNSUPPORTED', 'a .json file is read as an array of objects ([{...}, ...]); this one is not an array');
        this.state = 'between';
        this.expect = 'first';
      } else if (this.state === 'between') {
        // exactly one comma between elements: a missing, doubled or trailing one is a damaged document
        if (c === 0x5d) {
          if (this.expect === 'element') this.malformed('a comma before the closing bracket');
          this.state = 'after';
        } else if (c === 0x2c) {
          if (this.expect !== 'comma') this.malformed('a comma where an element should be');
          this.expect = 'element';
        } else {
          if (this.expect === 'comma') this.malformed('an element without a comma before it');
          this.state = 'in';
          this.elementLine = this.line;
          start = i;
          this.depth = 0;
          i--; // read this byte again, inside the element
        }
      } else if (this.state === 'after') {
        throw new SluiceError('FORMAT_UNSUPPORTED', `the JSON document goes on after its array closes (line ${this.line})`);
      }
    }
    if (start !== -1) this.gather.add(chunk.subarray(start));
  }

  end(): void {
    if (this.state === 'before') throw new SluiceError('FORMAT_UNSUPPORTED', 'the .json file is empty: no array of objects');
    if (this.state !== 'after')
      throw new SluiceError('JSON_INCOMPLETE', `the JSON document ends (line ${this.line}) before its array closes: the file is cut short`, {
        line: this.line,
      });
  }

  private malformed(what: string): never {
    throw new SluiceError('JSON_MALFORMED', `the JSON array is damaged at line ${this.line}: ${what}`, { line: this.line });
  }

  private closeElement(): void {
    const oversized = this.gather.oversized;
    const bytes = this.gather.take();
    if (oversized) this.records.tooLarge(this.elementLine, this.gather.max, bytes);
    else this.records.take(this.elementLine, bytes);
    this.inString = false;
    this.escaped = false;
    this.depth = 0;
  }
}

/** A rejected record's bytes: a copy of those at hand (they may be a view of a chunk), or made from its valid UTF-8 text. */
function rawOf(text: string, bytes: Buffer | undefined): Buffer {
  return bytes === undefined ? Buffer.from(text) : Buffer.from(bytes);
}

function isBlankText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== CR) return false;
  }
  return true;
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
