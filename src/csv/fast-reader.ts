// The fast path of parseCsv: a hand-written tokenizer for well-formed CSV (one-byte delimiter, `"` quotes,
// LF or CRLF line ends, valid UTF-8). At the first thing it does not handle exactly like csv-parse (a quote
// out of place, an unclosed quote, a lone CR, invalid UTF-8, a huge record) it hands the rest of the file,
// from that record on, to CsvRecordReader (csv-parse), so both give exactly the same records and rejects
// (test/unit/fast-reader.test.ts proves it on a corpus and on fuzzed input).
import { isUtf8 } from 'node:buffer';
import { SluiceError } from '../errors.js';
import { CsvRecordReader, DEFAULT_MAX_RECORD_SIZE, type CsvReadOptions, type RecordHandler } from './record-reader.js';

const LF = 10;
const CR = 13;
const QUOTE = 34;

/** True when these options can use the fast path. */
export function fastPathApplies(options: CsvReadOptions): boolean {
  const delimiter = options.delimiter ?? ',';
  return (
    delimiter.length === 1 &&
    delimiter !== '"' &&
    delimiter !== '\r' &&
    delimiter !== '\n' &&
    (options.quote === undefined || options.quote === '"') &&
    (options.escape === undefined || options.escape === '"') &&
    (options.encoding ?? 'utf8') === 'utf8' &&
    (options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE) >= 1024 * 1024
  );
}

/** Same contract as CsvRecordReader; `handler.record` also gets the record's text when it is canonical. */
export class FastCsvReader {
  private text = '';
  private line = 1;
  private width = -1;
  private first = true;
  private carry: Buffer | undefined;
  private fallback: CsvRecordReader | undefined;
  private readonly delim: number;
  private readonly delimiter: string;
  private readonly maxChars: number;

  constructor(
    private readonly handler: RecordHandler,
    private readonly options: CsvReadOptions = {},
  ) {
    if (!fastPathApplies(options)) throw new Error('FastCsvReader: these options need csv-parse');
    this.delimiter = options.delimiter ?? ',';
    this.delim = this.delimiter.charCodeAt(0);
    // a record this long (in characters) might be over maxRecordSize bytes: let csv-parse judge it
    this.maxChars = Math.floor((options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE) / 4);
  }

  write(chunk: Buffer): void {
    if (this.fallback !== undefined) {
      this.fallback.write(chunk);
      return;
    }
    if (this.first) {
      // tiny first chunks (a BOM cut in two) are rare: csv-parse's path handles them
      if (chunk.length < 4) {
        this.toFallback(chunk, true);
        return;
      }
      this.first = false;
      if ((this.options.refuseBinary ?? true) && chunk.indexOf(0) !== -1) {
        throw new SluiceError('BINARY_FILE', 'the file holds NUL bytes: it is binary, not CSV text');
      }
      if ((this.options.bom ?? true) && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) chunk = chunk.subarray(3);
    }
    let bytes = this.carry === undefined ? chunk : Buffer.concat([this.carry, chunk]);
    this.carry = undefined;
    const cut = completeLength(bytes);
    if (cut < bytes.length) {
      this.carry = Buffer.from(bytes.subarray(cut));
      bytes = bytes.subarray(0, cut);
    }
    if (!isUtf8(bytes)) {
      this.toFallback(bytes);
      return;
    }
    this.text += bytes.toString('utf8');
    this.parse(false);
    if (this.fallback === undefined && this.text.length > this.maxChars) this.toFallback();
  }

  end(): void {
    if (this.fallback === undefined && this.carry !== undefined) this.toFallback();
    if (this.fallback === undefined) {
      this.parse(true);
      if (this.fallback === undefined) return;
    }
    this.fallback.end();
  }

  /** Hands the rest (from the current record) to csv-parse: `text`, then `more`, then any carried bytes. */
  private toFallback(more?: Buffer, fresh = false): void {
    const rest = this.text;
    this.text = '';
    const resume = fresh ? undefined : { line: this.line, width: this.width };
    this.fallback = new CsvRecordReader(this.handler, fresh ? this.options : { ...this.options, bom: false, refuseBinary: false, resume });
    if (rest.length > 0) this.fallback.write(Buffer.from(rest, 'utf8'));
    if (more !== undefined && more.length > 0) this.fallback.write(more);
    if (this.carry !== undefined) this.fallback.write(this.carry);
    this.carry = undefined;
    this.first = false;
  }

  /** Emits every complete record in `text`; `final`: no more text will come. */
  private parse(final: boolean): void {
    const s = this.text;
    const n = s.length;
    const D = this.delim;
    let pos = 0;
    records: while (pos < n) {
      const c0 = s.charCodeAt(pos);
      if (c0 === LF) {
        this.line++;
        pos++;
        continue;
      }
      if (c0 === CR) {
        if (pos + 1 >= n && !final) break;
        if (pos + 1 < n && s.charCodeAt(pos + 1) === LF) {
          this.line++;
          pos += 2;
          continue;
        }
        break records; // a lone CR: csv-parse's
      }
      // the common case: a line without quotes or CRs is split natively, and is its own canonical text
      const nl = s.indexOf('\n', pos);
      if (nl !== -1) {
        const lineEnd = s.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
        const text = s.slice(pos, lineEnd);
        if (text.indexOf('"') === -1 && text.indexOf('\r') === -1) {
          const fields = text.split(this.delimiter);
          const line = this.line;
          if (this.width === -1) {
            this.width = fields.length;
            this.handler.record(fields, line, text);
          } else if (fields.length !== this.width) {
            this.handler.reject(line, 'CSV_RECORD_INCONSISTENT_COLUMNS', `line ${line}: expected ${this.width} fields as in the header, got ${fields.length}`, Buffer.from(text, 'utf8'));
          } else {
            this.handler.record(fields, line, text);
          }
          this.line++;
          pos = nl + 1;
          continue;
        }
      }
      const fields: string[] = [];
      let i = pos;
      let canonical = true;
      let inner = 0; // line ends inside quoted fields
      let end: number;
      for (;;) {
        if (i < n && s.charCodeAt(i) === QUOTE) {
          let j = i + 1;
          let escaped = false;
          let q: number;
          for (;;) {
            q = s.indexOf('"', j);
            if (q === -1 || (q + 1 >= n && !final)) {
              if (q === -1 && final) break records; // unclosed at the end: csv-parse's
              break records; // need more text (handled below: not final)
            }
            if (q + 1 < n && s.charCodeAt(q + 1) === QUOTE) {
              escaped = true;
              j = q + 2;
              continue;
            }
            break;
          }
          const body = s.slice(i + 1, q);
          if (body.indexOf('\r') !== -1) break records; // CR inside quotes: csv-parse counts lines its way
          for (let k = body.indexOf('\n'); k !== -1; k = body.indexOf('\n', k + 1)) inner++;
          const field = escaped ? body.replace(/""/g, '"') : body;
          // quoted without need: the text is not what a writer would produce, so no raw passthrough
          if (!escaped && body.indexOf('\n') === -1 && body.indexOf(this.delimiter) === -1) canonical = false;
          fields.push(field);
          i = q + 1;
        } else {
          let j = i;
          while (j < n) {
            const c = s.charCodeAt(j);
            if (c === D || c === LF || c === CR) break;
            if (c === QUOTE) break records; // a quote inside an unquoted field: csv-parse's
            j++;
          }
          if (j >= n && !final) break records;
          fields.push(s.slice(i, j));
          i = j;
        }
        if (i >= n) {
          if (!final) break records;
          end = n;
          break;
        }
        const c = s.charCodeAt(i);
        if (c === D) {
          i++;
          if (i >= n && !final) break records;
          continue;
        }
        if (c === LF) {
          end = i;
          i++;
          break;
        }
        if (c === CR) {
          if (i + 1 >= n && !final) break records;
          if (i + 1 < n && s.charCodeAt(i + 1) === LF) {
            end = i;
            i += 2;
            break;
          }
        }
        break records; // something after a closing quote, or a lone CR: csv-parse's
      }
      const line = this.line;
      const raw = s.slice(pos, end);
      if (this.width === -1) {
        this.width = fields.length;
        this.handler.record(fields, line, canonical ? raw : undefined);
      } else if (fields.length !== this.width) {
        this.handler.reject(
          line,
          'CSV_RECORD_INCONSISTENT_COLUMNS',
          `line ${line}: expected ${this.width} fields as in the header, got ${fields.length}`,
          Buffer.from(raw, 'utf8'),
        );
      } else {
        this.handler.record(fields, line, canonical ? raw : undefined);
      }
      this.line += 1 + inner;
      pos = i;
    }
    this.text = pos === 0 ? s : s.slice(pos);
    if (pos < n && final) this.toFallback();
    else if (pos < n && this.needsFallback(this.text)) this.toFallback();
  }

  /** Something left in `text` that waiting for more input cannot resolve: a lone CR or a stray quote. */
  private needsFallback(rest: string): boolean {
    // the loop stops early only for want of text, except on anomalies; re-check the anomalies cheaply
    const s = rest;
    const n = s.length;
    if (n === 0) return false;
    const c0 = s.charCodeAt(0);
    if (c0 === CR) return n >= 2 && s.charCodeAt(1) !== LF;
    let i = 0;
    const D = this.delim;
    for (;;) {
      if (i >= n) return false;
      if (s.charCodeAt(i) === QUOTE) {
        let j = i + 1;
        let q: number;
        for (;;) {
          q = s.indexOf('"', j);
          if (q === -1 || q + 1 >= n) return false;
          if (s.charCodeAt(q + 1) === QUOTE) {
            j = q + 2;
            continue;
          }
          break;
        }
        if (s.slice(i + 1, q).indexOf('\r') !== -1) return true;
        i = q + 1;
      } else {
        while (i < n) {
          const c = s.charCodeAt(i);
          if (c === D || c === LF || c === CR) break;
          if (c === QUOTE) return true;
          i++;
        }
        if (i >= n) return false;
      }
      const c = s.charCodeAt(i);
      if (c === D) {
        i++;
        continue;
      }
      if (c === LF) return false; // a complete record would have been taken: cannot happen
      if (c === CR) return i + 1 < n && s.charCodeAt(i + 1) !== LF;
      return true;
    }
  }
}

/** The length of `buf` without a trailing, incomplete UTF-8 sequence. */
function completeLength(buf: Buffer): number {
  const n = buf.length;
  for (let k = 1; k <= 3 && k <= n; k++) {
    const b = buf[n - k]!;
    if ((b & 0xc0) === 0x80) continue;
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      if (need > k) return n - k;
    }
    return n;
  }
  return n;
}
