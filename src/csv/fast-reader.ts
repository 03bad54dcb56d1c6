// The fast path of parseCsv: a hand-written tokenizer for well-formed CSV (one-byte delimiter, `"` quotes,
// LF or CRLF line ends, valid UTF-8). At the first thing it does not handle exactly like csv-parse (a quote
// out of place, an unclosed quote, a lone CR, invalid UTF-8, a huge record) it hands the rest of the file,
// from that record on, to CsvRecordReader (csv-parse), so both give exactly the same records and rejects
// (test/unit/fast-reader.test.ts proves it on a corpus and on fuzzed input).
import { isUtf8 } from 'node:buffer';
import { refuseNotCsv } from './not-csv.js';
import { CsvRecordReader, DEFAULT_MAX_RECORD_SIZE, type CsvReadOptions, type RecordHandler } from './record-reader.js';

const LF = 10;
const CR = 13;
const QUOTE = 34;
const PIECE = 64 * 1024;

/** True when these options can use the fast path. */
export function fastPathApplies(options: CsvReadOptions): boolean {
  const delimiter = options.delimiter ?? ',';
  return (
    delimiter.length === 1 &&
    delimiter.charCodeAt(0) < 0x80 && // one byte in UTF-8
    delimiter !== '"' &&
    delimiter !== '\r' &&
    delimiter !== '\n' &&
    (options.quote === undefined || options.quote === '"') &&
    (options.escape === undefined || options.escape === '"') &&
    (options.encoding ?? 'utf8') === 'utf8' &&
    (options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE) >= 1024 * 1024 &&
    // relaxed quotes are csv-parse's alone (README Performance gives the cost); comments are read here
    (options.comment === undefined || (options.comment !== '"' && options.comment !== delimiter && options.comment !== '\r' && options.comment !== '\n')) &&
    options.relaxQuotes !== true
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
  /** The comment character's code, or -1. */
  private readonly comment: number;

  constructor(
    private readonly handler: RecordHandler,
    private readonly options: CsvReadOptions = {},
  ) {
    if (!fastPathApplies(options)) throw new Error('FastCsvReader: these options need csv-parse');
    this.delimiter = options.delimiter ?? ',';
    this.delim = this.delimiter.charCodeAt(0);
    this.line = options.firstLine ?? 1;
    this.comment = options.comment === undefined ? -1 : options.comment.charCodeAt(0);
    if (options.width !== undefined) this.width = options.width;
    // a record this long (in characters) might be over maxRecordSize bytes: let csv-parse judge it
    this.maxChars = Math.floor((options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE) / 4);
  }

  write(chunk: Buffer): void {
    if (this.fallback !== undefined) {
      this.fallback.write(chunk);
      return;
    }
    // text is decoded and cut in pieces of at most 64 KiB: on larger strings V8's slices cost several times
    // more per record (measured: 1M rows parse in ~0.35 s from 64 KiB chunks, ~2 s from 256 KiB ones)
    if (chunk.length > PIECE) {
      // csv-parse's reader looks for NUL bytes in the whole first chunk, not only in its first piece
      if (this.first && (this.options.refuseBinary ?? true)) refuseNotCsv(chunk.subarray(0, PIECE), chunk);
      for (let at = 0; at < chunk.length; at += PIECE) this.writePiece(chunk.subarray(at, at + PIECE));
      return;
    }
    this.writePiece(chunk);
  }

  private writePiece(chunk: Buffer): void {
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
      if (this.options.refuseBinary ?? true) refuseNotCsv(chunk);
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

  /**
   * Emits every complete record in `text`; `final`: no more text will come. Stops at the first record it
   * cannot finish for want of text (kept for the next chunk) or that csv-parse must judge (handed over).
   * Fields are cut with `indexOf` and `slice` (faster than `split` or a loop over every character); the
   * next quote, CR and delimiter positions are cached so that each stretch of text is searched once.
   */
  private parse(final: boolean): void {
    const s = this.text;
    const n = s.length;
    const D = this.delim;
    const delimiter = this.delimiter;
    const handler = this.handler;
    const maxChars = this.maxChars;
    let pos = 0;
    // next quote / CR / delimiter at or after the position last asked about; n when there is none
    let nq = -1;
    let ncr = -1;
    let nd = -1;
    let anomaly = false;
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
        anomaly = true; // a lone CR: csv-parse's
        break;
      }
      let nl = s.indexOf('\n', pos);
      if (nl === -1) {
        if (!final) break;
        nl = n;
      }
      if (c0 === this.comment) {
        // a comment line (csv-parse's comment_no_infix): up to its LF or CRLF; a lone CR in it is csv-parse's
        if (ncr < pos) {
          ncr = s.indexOf('\r', pos);
          if (ncr === -1) ncr = n;
        }
        if (ncr < nl - 1 || (ncr === nl - 1 && nl === n) || nl - pos > maxChars) {
          anomaly = true;
          break;
        }
        handler.comments?.(1);
        this.line++;
        pos = nl + 1;
        continue;
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
            if (q === -1) {
              if (final) anomaly = true; // unclosed at the end: csv-parse's
              break records;
            }
            if (q + 1 >= n && !final) break records; // `"` or `""`? the next chunk says
            if (q + 1 < n && s.charCodeAt(q + 1) === QUOTE) {
              escaped = true;
              j = q + 2;
              continue;
            }
            break;
          }
          if (ncr < i) {
            ncr = s.indexOf('\r', i);
            if (ncr === -1) ncr = n;
          }
          if (ncr < q) {
            anomaly = true; // a CR inside quotes: csv-parse counts lines its way
            break records;
          }
          const body = s.slice(i + 1, q);
          // nl is the first LF at or after i: the body holds line ends when it comes before the closing quote
          const multiline = nl < q;
          if (multiline) {
            for (let k = nl; k !== -1 && k < q; k = s.indexOf('\n', k + 1)) inner++;
            nl = s.indexOf('\n', q);
            if (nl === -1) {
              if (!final) break records;
              nl = n;
            }
          }
          // quoted without need: not what a writer would produce, so no raw passthrough
          if (!escaped && !multiline && body.indexOf(delimiter) === -1) canonical = false;
          fields.push(escaped ? body.replace(/""/g, '"') : body);
          i = q + 1;
        } else {
          // an unquoted field ends at the next delimiter, CR or LF; a quote before that is csv-parse's
          if (nd < i) {
            nd = s.indexOf(delimiter, i);
            if (nd === -1) nd = n;
          }
          if (ncr < i) {
            ncr = s.indexOf('\r', i);
            if (ncr === -1) ncr = n;
          }
          let e = Math.min(nd, nl);
          if (ncr < e) e = ncr;
          if (nq < i) {
            nq = s.indexOf('"', i);
            if (nq === -1) nq = n;
          }
          if (nq < e) {
            anomaly = true;
            break records;
          }
          fields.push(s.slice(i, e));
          i = e;
        }
        if (i >= n) {
          if (!final) break records;
          end = n;
          break;
        }
        const c = s.charCodeAt(i);
        if (c === D) {
          i++;
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
        anomaly = true; // something after a closing quote, or a lone CR: csv-parse's
        break records;
      }
      if (end - pos > maxChars) {
        anomaly = true; // maybe over maxRecordSize: csv-parse judges
        break;
      }
      const line = this.line;
      const raw = s.slice(pos, end);
      if (this.width === -1) {
        this.width = fields.length;
        handler.record(fields, line, canonical ? raw : undefined);
      } else if (fields.length !== this.width) {
        handler.reject(
          line,
          'CSV_RECORD_INCONSISTENT_COLUMNS',
          `line ${line}: expected ${this.width} fields as in the header, got ${fields.length}`,
          Buffer.from(raw, 'utf8'),
        );
      } else {
        handler.record(fields, line, canonical ? raw : undefined);
      }
      this.line += 1 + inner;
      pos = i;
    }
    this.text = pos === 0 ? s : s.slice(pos);
    if (pos < n && (anomaly || final)) this.toFallback();
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
