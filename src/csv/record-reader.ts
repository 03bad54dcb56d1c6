// The pure core of parseCsv: feeds bytes to csv-parse and turns its output into records with their
// source line, or rejections that carry the record's original bytes; it resynchronises after a bad record.
import { isUtf8 } from 'node:buffer';
import { Parser } from 'csv-parse';
import { type RowErrorCode, ROW_ERROR_CODES } from '../errors.js';
import { refuseNotCsv } from './not-csv.js';

export interface CsvReadOptions {
  /** Field delimiter (one or more characters). Default `,`. */
  delimiter?: string;
  /** Quote character, or null to turn quoting off. Default `"`. */
  quote?: string | null;
  /** Escape character inside quoted fields. Default: the quote itself (`""`). */
  escape?: string | null;
  /** How field bytes are decoded. `utf8` is strict: a record with invalid bytes is rejected. */
  encoding?: 'utf8' | 'latin1';
  /** Strip a UTF-8 byte order mark at the start of the file. Default true. */
  bom?: boolean;
  /** A record larger than this many bytes is rejected (`CSV_MAX_RECORD_SIZE`). Default 16 MiB. */
  maxRecordSize?: number;
  /** Fail the whole file (`BINARY_FILE`) when its first chunk holds a NUL byte. Default true. */
  refuseBinary?: boolean;
  /** Continue a file another reader started: the line of the next record, and the header's width. */
  resume?: { line: number; width: number };
  /**
   * The file's line number of the first byte given (after a preamble the caller skipped). Default 1.
   * Lines in records, rejects and messages are counted from it.
   */
  firstLine?: number;
  /**
   * The header is not in the bytes: every record, the first included, is data and must have this many
   * fields (`input.header: false` with `input.columns`).
   */
  width?: number;
  /**
   * A line that starts with this character (at the start of a record, outside quotes) is a comment: not a
   * record, counted through `handler.comments`. The fast path reads comment lines too.
   */
  comment?: string;
  /**
   * A quote inside an unquoted field is text (`5'3" tall`, `a"b`) instead of INVALID_OPENING_QUOTE.
   * csv-parse path only.
   */
  relaxQuotes?: boolean;
  // the three below are parseCsv's (the readers ignore them): here so a pipeline's `csv` settings carry them
  /**
   * False: the file has no header line, its first record is data, and the header is `columns` (required).
   * True (default): the first record is the header; with `columns` it is replaced by them, which must be
   * as many (else COLUMNS_MISMATCH).
   */
  header?: boolean;
  /** The column names (see `header`). */
  columns?: readonly string[];
  /** Physical lines (LF, CRLF or CR; quotes not considered) skipped before the header; line numbers stay the file's. */
  skipLines?: number;
}

export interface RecordHandler {
  /**
   * A well-formed record; the first one is the header. `line` is where it starts (1-based). `raw` (fast path
   * only) is the record's text when writing `fields` back as CSV would give exactly that text.
   */
  record(fields: string[], line: number, raw?: string): void;
  /** A malformed record: where it starts, why, and its original bytes (line terminator excluded). */
  reject(line: number, code: RowErrorCode, message: string, raw: Buffer): void;
  /** `count` more comment lines were passed over (with `comment` set). */
  comments?(count: number): void;
}

/** Options parseCsv handles before the readers. */
type DialectKey = 'header' | 'columns' | 'skipLines';

export const DEFAULT_MAX_RECORD_SIZE = 16 * 1024 * 1024;
const NL = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

type CsvParseApi = {
  parse(buf: Buffer | undefined, end: boolean, push: (record: string[]) => void, close: () => void): Error | undefined;
  info: { bytes: number; lines: number; comment_lines: number };
};

interface Chunk {
  buf: Buffer;
  /** Absolute offset of buf[0] in the file (after the BOM). */
  start: number;
  /** False when the chunk failed the UTF-8 check: records overlapping it are checked exactly. */
  utf8: boolean;
}

/**
 * Streams CSV bytes into records. Keeps only the chunks that hold the current, unfinished record, so
 * memory is bounded by the record size limit, not the file size.
 */
export class CsvRecordReader {
  private readonly opts: Required<Omit<CsvReadOptions, 'quote' | 'escape' | 'resume' | 'firstLine' | 'width' | 'comment' | DialectKey>> &
    Pick<CsvReadOptions, 'quote' | 'escape' | 'comment'>;
  private parser!: CsvParseApi;
  /** Absolute offset and line that the current csv-parse instance started at. */
  private byteBase = 0;
  private lineBase = 0;
  /** Absolute offset and line where the current record starts. */
  private recordStart = 0;
  private recordLine = 1;
  /** Lines csv-parse counted twice in this parser instance: it counts a CRLF inside quotes as two. */
  private lineFix = 0;
  private fed = 0;
  private retained: Chunk[] = [];
  private width = -1;
  private first = true;
  private utf8Carry: Buffer | undefined;
  /** The first bytes of the file while they may still be the start of a BOM split across chunks. */
  private head: Buffer | undefined;
  /** While > 0, bytes are skipped (after a parse error) until this many more line ends have passed. */
  private skipLines = 0;
  private skipTotal = 0;
  private swallowLF = false;
  private queue: Chunk[] = [];
  private skipRaw: Buffer[] = [];
  private skipRawBytes = 0;
  private skipPendingCR = false;
  private skipInfo: { line: number; code: RowErrorCode; message: string } | undefined;
  /** Comment lines of the current csv-parse instance already passed to the handler. */
  private commentsSeen = 0;
  private readonly push = (fields: string[]): void => this.onParsed(fields);

  constructor(
    private readonly handler: RecordHandler,
    options: CsvReadOptions = {},
  ) {
    this.opts = {
      delimiter: options.delimiter ?? ',',
      quote: options.quote === undefined ? '"' : options.quote,
      escape: options.escape,
      encoding: options.encoding ?? 'utf8',
      bom: options.bom ?? true,
      maxRecordSize: options.maxRecordSize ?? DEFAULT_MAX_RECORD_SIZE,
      refuseBinary: options.refuseBinary ?? true,
      comment: options.comment,
      relaxQuotes: options.relaxQuotes ?? false,
    };
    const firstLine = options.firstLine ?? 1;
    this.recordLine = firstLine;
    this.lineBase = firstLine - 1;
    if (options.width !== undefined) this.width = options.width;
    if (options.resume !== undefined) {
      this.recordLine = options.resume.line;
      this.lineBase = options.resume.line - 1;
      this.width = options.resume.width;
      this.first = false;
    }
    this.parser = this.newParser();
  }

  /** Feeds the next chunk of the file. Throws a SluiceError only for whole-file failures. */
  write(chunk: Buffer): void {
    if (this.first) {
      if (this.head !== undefined) chunk = Buffer.concat([this.head, chunk]);
      this.head = undefined;
      if (chunk.length === 0) return;
      if (this.opts.bom && chunk.length < 3 && BOM.subarray(0, chunk.length).equals(chunk)) {
        this.head = Buffer.from(chunk);
        return;
      }
      this.first = false;
      if (this.opts.refuseBinary) refuseNotCsv(chunk);
      if (this.opts.bom && chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
        chunk = chunk.subarray(3);
      }
    }
    if (chunk.length === 0) return;
    this.queue.push({ buf: chunk, start: this.fed, utf8: this.checkUtf8(chunk) });
    this.fed += chunk.length;
    this.drain();
  }

  /** Signals the end of the file: flushes the last record. */
  end(): void {
    // a file that is only a BOM prefix: text after all
    if (this.head !== undefined) {
      this.opts.bom = false;
      this.write(this.head);
    }
    this.first = false;
    // bytes held back as the start of a multi-byte character never got one: the last chunk is not UTF-8
    if (this.utf8Carry !== undefined) {
      this.utf8Carry = undefined;
      for (const c of this.retained) c.utf8 = false;
      for (const c of this.queue) c.utf8 = false;
    }
    for (;;) {
      this.drain();
      if (this.skipLines > 0) {
        this.finishSkip(this.fed);
        return;
      }
      const err = this.parser.parse(undefined, true, this.push, noop);
      if (err === undefined) {
        this.passComments();
        return;
      }
      this.startSkip(err);
    }
  }

  private drain(): void {
    while (this.queue.length > 0) {
      const c = this.queue.shift()!;
      if (this.skipLines > 0) {
        const rest = this.skip(c);
        if (rest !== undefined) this.queue.unshift(rest);
        continue;
      }
      if (this.swallowLF) {
        this.swallowLF = false;
        if (c.buf[0] === NL) {
          this.queue.unshift({ buf: c.buf.subarray(1), start: c.start + 1, utf8: c.utf8 });
          this.recordStart = this.byteBase = c.start + 1;
          continue;
        }
      }
      if (c.buf.length === 0) continue;
      this.retained.push(c);
      const err = this.parser.parse(c.buf, false, this.push, noop);
      if (err !== undefined) this.startSkip(err);
    }
  }

  private newParser(): CsvParseApi {
    const { delimiter, quote, escape: escapeChar, encoding, maxRecordSize, comment, relaxQuotes } = this.opts;
    this.commentsSeen = 0;
    const parser = new Parser({
      delimiter,
      quote: quote ?? false,
      ...(escapeChar === undefined ? {} : { escape: escapeChar ?? false }),
      encoding,
      relax_column_count: true,
      skip_empty_lines: false,
      record_delimiter: ['\r\n', '\n', '\r'],
      max_record_size: maxRecordSize,
      ...(comment === undefined ? {} : { comment, comment_no_infix: true }),
      ...(relaxQuotes ? { relax_quotes: true } : {}),
    } as ConstructorParameters<typeof Parser>[0]);
    return (parser as unknown as { api: CsvParseApi }).api;
  }

  private onParsed(fields: string[]): void {
    const info = this.parser.info;
    if (info.comment_lines !== this.commentsSeen) this.passComments();
    const start = this.recordStart;
    const end = this.byteBase + info.bytes;
    const line = this.recordLine;
    this.recordStart = end;
    for (const f of fields) {
      for (let i = f.indexOf('\r\n'); i !== -1; i = f.indexOf('\r\n', i + 2)) this.lineFix++;
    }
    this.recordLine = this.lineBase + info.lines - this.lineFix + 1;
    if (fields.length === 1 && fields[0] === '' && this.isBlank(start, end)) {
      this.release();
      return;
    }
    if (this.opts.encoding === 'utf8' && !this.rangeIsUtf8(start, end)) {
      this.handler.reject(line, 'INVALID_UTF8', `line ${line}: the record holds bytes that are not valid UTF-8`, this.bytes(start, end, true));
    } else if (this.width === -1) {
      this.width = fields.length;
      this.handler.record(fields, line);
    } else if (fields.length !== this.width) {
      this.handler.reject(
        line,
        'CSV_RECORD_INCONSISTENT_COLUMNS',
        `line ${line}: expected ${this.width} fields as in the header, got ${fields.length}`,
        this.bytes(start, end, true),
      );
    } else {
      this.handler.record(fields, line);
    }
    this.release();
  }

  /** csv-parse stopped on a malformed record: reject it and resume after the line the error is on. */
  private startSkip(err: Error & { code?: string; lines?: number }): void {
    if (this.parser.info.comment_lines !== this.commentsSeen) this.passComments();
    const code = (err.code !== undefined && err.code in ROW_ERROR_CODES ? err.code : 'CSV_PARSE_ERROR') as RowErrorCode;
    const counted = this.lineBase + (err.lines ?? 1) - this.lineFix - this.recordLine;
    const errLine = this.recordLine + (counted > 0 ? this.linesInRecord(counted) : 0);
    // csv-parse counts lines from where this parser instance started: say them as lines of the file
    const message = err.message.replace(/\b(at|on) line \d+/g, `$1 line ${errLine}`);
    this.skipInfo = { line: this.recordLine, code, message: `line ${this.recordLine}: ${message}` };
    this.skipLines = this.skipTotal = errLine - this.recordLine + 1;
    this.skipPendingCR = false;
    this.skipRaw = [];
    this.skipRawBytes = 0;
    // everything from the bad record's start is scanned again, in skip mode
    const again: Chunk[] = [];
    for (const c of this.retained) {
      const from = Math.max(0, this.recordStart - c.start);
      if (from < c.buf.length) again.push({ buf: c.buf.subarray(from), start: c.start + from, utf8: c.utf8 });
    }
    this.retained = [];
    this.queue.unshift(...again);
  }

  /** Consumes a bad record's bytes until `skipLines` line ends have passed; returns what follows them. */
  private skip(c: Chunk): Chunk | undefined {
    const buf = c.buf;
    let i = 0;
    if (this.skipPendingCR) {
      // a CR ended the previous chunk and was counted; a LF right after it belongs to that line end
      this.skipPendingCR = false;
      if (buf[0] === NL) i = 1;
    }
    for (; i < buf.length; i++) {
      const b = buf[i];
      if (b !== NL && b !== CR) continue;
      const next = b === CR && buf[i + 1] === NL ? i + 2 : i + 1;
      if (--this.skipLines === 0) {
        // a CR that ends the chunk may be the first half of a CRLF: the LF must not start a new line
        // (a whole CRLF at the end is not: `next` would equal the length for it too)
        this.swallowLF = b === CR && i + 1 === buf.length;
        this.keepSkipRaw(buf.subarray(0, i));
        this.finishSkip(c.start + next);
        return next < buf.length ? { buf: buf.subarray(next), start: c.start + next, utf8: c.utf8 } : undefined;
      }
      if (b === CR && i + 1 === buf.length) this.skipPendingCR = true;
      i = next - 1;
    }
    this.keepSkipRaw(buf);
    return undefined;
  }

  private keepSkipRaw(part: Buffer): void {
    const room = this.opts.maxRecordSize - this.skipRawBytes;
    if (room <= 0 || part.length === 0) return;
    const kept = part.length > room ? part.subarray(0, room) : part;
    this.skipRaw.push(kept);
    this.skipRawBytes += kept.length;
  }

  private finishSkip(resumeAt: number): void {
    const info = this.skipInfo!;
    let raw = Buffer.concat(this.skipRaw);
    if (raw.length > 0 && raw[raw.length - 1] === CR) raw = raw.subarray(0, raw.length - 1);
    this.handler.reject(info.line, info.code, info.message, raw);
    this.skipLines = 0;
    this.skipRaw = [];
    this.skipRawBytes = 0;
    this.skipInfo = undefined;
    this.recordStart = this.byteBase = resumeAt;
    this.recordLine = info.line + this.skipTotal;
    this.lineBase = this.recordLine - 1;
    this.lineFix = 0;
    this.parser = this.newParser();
  }

  /**
   * csv-parse passed over comment lines since the last record: tell the handler, and move the current
   * record's start (its line and first byte) past them, so its line number and raw bytes are its own.
   */
  private passComments(): void {
    const n = this.parser.info.comment_lines - this.commentsSeen;
    if (n <= 0) return;
    this.commentsSeen += n;
    this.handler.comments?.(n);
    let left = n;
    let pos = this.recordStart;
    let prevCR = false;
    scan: for (const c of this.retained) {
      for (let i = Math.max(0, pos - c.start); i < c.buf.length; i++) {
        const b = c.buf[i];
        if (prevCR) {
          prevCR = false;
          if (b === NL) {
            pos = c.start + i + 1;
            if (left === 0) break scan;
            continue;
          }
        }
        if (left === 0) break scan;
        if (b === NL) {
          left--;
          pos = c.start + i + 1;
          if (left === 0) break scan;
        } else if (b === CR) {
          left--;
          pos = c.start + i + 1;
          prevCR = true;
        }
      }
    }
    this.recordStart = pos;
    this.recordLine += n;
  }

  /**
   * The line ends from the current record's start to the point where csv-parse counted `counted` of
   * them. Before a parse error every line end is inside the record's quotes, where csv-parse counts a
   * CRLF twice; here it counts once.
   */
  private linesInRecord(counted: number): number {
    let seen = 0;
    let lines = 0;
    let prevCR = false;
    for (const c of this.retained) {
      for (let i = Math.max(0, this.recordStart - c.start); i < c.buf.length && seen < counted; i++) {
        const b = c.buf[i];
        if (b === CR) lines++;
        else if (b === NL && !prevCR) lines++;
        if (b === CR || b === NL) seen++;
        prevCR = b === CR;
      }
    }
    return lines + Math.max(0, counted - seen);
  }

  private release(): void {
    const r = this.retained;
    let drop = 0;
    while (drop < r.length - 1 && r[drop]!.start + r[drop]!.buf.length <= this.recordStart) drop++;
    if (drop > 0) r.splice(0, drop);
  }

  private isBlank(start: number, end: number): boolean {
    if (end - start > 2) return false;
    const b = this.bytes(start, end, false);
    for (const x of b) if (x !== NL && x !== CR) return false;
    return true;
  }

  private checkUtf8(chunk: Buffer): boolean {
    if (this.opts.encoding !== 'utf8') return true;
    // a multi-byte character split across chunks must not fail the check: carry its head over
    let cut = chunk.length;
    for (let k = 1; k <= 3 && k <= chunk.length; k++) {
      const b = chunk[chunk.length - k]!;
      if ((b & 0xc0) === 0x80) continue;
      if (b >= 0xc0) {
        const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
        if (need > k) cut = chunk.length - k;
      }
      break;
    }
    const head = this.utf8Carry === undefined ? chunk.subarray(0, cut) : Buffer.concat([this.utf8Carry, chunk.subarray(0, cut)]);
    this.utf8Carry = cut < chunk.length ? Buffer.from(chunk.subarray(cut)) : undefined;
    return isUtf8(head);
  }

  private rangeIsUtf8(start: number, end: number): boolean {
    for (const c of this.retained) {
      if (!c.utf8 && c.start < end && c.start + c.buf.length > start) return isUtf8(this.bytes(start, end, false));
    }
    return true;
  }

  /** The bytes [start, end) from the retained chunks; `trim` drops one trailing line terminator. */
  private bytes(start: number, end: number, trim: boolean): Buffer {
    const parts: Buffer[] = [];
    for (const c of this.retained) {
      const s = Math.max(start, c.start);
      const e = Math.min(end, c.start + c.buf.length);
      if (s < e) parts.push(c.buf.subarray(s - c.start, e - c.start));
    }
    let out = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (trim) {
      if (out.length > 0 && out[out.length - 1] === NL) out = out.subarray(0, out.length - 1);
      if (out.length > 0 && out[out.length - 1] === CR) out = out.subarray(0, out.length - 1);
    }
    return out;
  }
}

function noop(): void {}
