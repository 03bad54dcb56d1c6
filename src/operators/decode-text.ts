// decodeText: turns input bytes in another encoding (latin1, windows-1252, UTF-16 with its BOM) into UTF-8
// bytes, chunk by chunk, so the CSV reader always reads UTF-8. UTF-8 input passes through untouched.
import { Observable, type OperatorFunction } from 'rxjs';
import { SluiceError } from '../errors.js';

export type InputEncoding = 'utf8' | 'latin1' | 'windows-1252' | 'utf16le';

/** windows-1252 differs from latin1 only in 0x80-0x9F (Node 20's TextDecoder gets these wrong). */
const CP1252_HIGH = [
  0x20ac, 0x81, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8d, 0x017d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c,
  0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x9d, 0x017e, 0x0178,
];

export function decodeWindows1252(chunk: Buffer): string {
  const s = chunk.toString('latin1');
  return /[\x80-\x9f]/.test(s) ? s.replace(/[\x80-\x9f]/g, (c) => String.fromCharCode(CP1252_HIGH[c.charCodeAt(0) - 0x80]!)) : s;
}

/**
 * Re-encodes the byte stream as UTF-8. With `utf8`, a UTF-16 byte order mark at the start switches to
 * UTF-16 (LE or BE) by itself; otherwise bytes pass through unchanged (the reader checks them strictly).
 *
 * @example fileBytes(path).pipe(decodeText('windows-1252'), parseCsv())
 */
export function decodeText(encoding: InputEncoding = 'utf8'): OperatorFunction<Buffer, Buffer> {
  return (source) =>
    new Observable<Buffer>((subscriber) => {
      let decoder: Decoder | null | undefined; // undefined: not decided; null: pass through
      const fail = (err: unknown): void =>
        subscriber.error(new SluiceError('ENCODING_INVALID', `the input is not valid ${decoder?.name ?? encoding}: ${(err as Error).message}`, { cause: err }));
      // the byte order mark decides: no decision before two bytes (or the end) were seen
      let head = Buffer.alloc(0);
      return source.subscribe({
        next: (next) => {
          let chunk = next;
          if (decoder === undefined) {
            head = Buffer.concat([head, next]);
            if (head.length < 2) return;
            decoder = pick(encoding, head);
            chunk = head;
          }
          if (decoder === null) return subscriber.next(chunk);
          let text: string;
          try {
            text = decoder.decode(chunk);
          } catch (err) {
            return fail(err);
          }
          if (text !== '') subscriber.next(Buffer.from(text, 'utf8'));
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          // the decoder holds a character cut by the end of the file: an odd byte, a lone surrogate
          try {
            if (decoder === undefined) {
              decoder = pick(encoding, head);
              if (head.length > 0) subscriber.next(decoder === null ? head : Buffer.from(decoder.decode(head), 'utf8'));
            }
            const rest = decoder?.end() ?? '';
            if (rest !== '') subscriber.next(Buffer.from(rest, 'utf8'));
          } catch (err) {
            return fail(err);
          }
          subscriber.complete();
        },
      });
    });
}

interface Decoder {
  name: string;
  decode(chunk: Buffer): string;
  /** What is left at the end of the input (throws if it is an incomplete character). */
  end(): string;
}

function pick(encoding: InputEncoding, first: Buffer): Decoder | null {
  const bomLE = first[0] === 0xff && first[1] === 0xfe;
  const bomBE = first[0] === 0xfe && first[1] === 0xff;
  if (bomLE || bomBE || encoding === 'utf16le') {
    // fatal: a lone surrogate or an odd byte fails the file instead of becoming U+FFFD; the decoder keeps
    // a character split across chunks for the next one, and drops the BOM
    const name = bomBE ? 'utf-16be' : 'utf-16le';
    const td = new TextDecoder(name, { fatal: true });
    return { name, decode: (chunk) => td.decode(chunk, { stream: true }), end: () => td.decode() };
  }
  if (encoding === 'latin1') return { name: 'latin1', decode: (chunk) => chunk.toString('latin1'), end: () => '' };
  if (encoding === 'windows-1252') return { name: 'windows-1252', decode: decodeWindows1252, end: () => '' };
  return null;
}
