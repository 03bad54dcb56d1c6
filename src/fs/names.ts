// Names that every filesystem takes: whatever the input's name, what sluice builds from it (claims, temporary
// files, outputs, rejects, error files) stays within NAME_MAX bytes, and a name that is not UTF-8 still
// gets a text name to be handled under.
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';

/** The longest file name (bytes) of Linux filesystems (ext4, xfs, btrfs, tmpfs, NFS). */
export const NAME_MAX = 255;

/**
 * `name`, or when it is longer than `max` bytes, its start cut at a character boundary, `~`, a hash of
 * the whole name (8 hex digits) and its extensions (up to 32 bytes of them): deterministic, so the same
 * input always gets the same short name, and two long names that share their start do not collide.
 */
export function fitName(name: string, max = NAME_MAX): string {
  if (Buffer.byteLength(name) <= max) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const ext = extensionsOf(name);
  const room = max - Buffer.byteLength(ext) - 9;
  return `${cutToBytes(name.slice(0, name.length - ext.length), room)}~${hash}${ext}`;
}

/** The last extensions of a name, as long as they are short: `a.rejects.csv` -> `.rejects.csv`. */
function extensionsOf(name: string): string {
  let ext = '';
  for (let end = name.length, i = 0; i < 3; i++) {
    const dot = name.lastIndexOf('.', end - 1);
    if (dot <= 0) break;
    const part = name.slice(dot, end);
    if (Buffer.byteLength(part) + Buffer.byteLength(ext) > 32 || /[\s]/.test(part)) break;
    ext = part + ext;
    end = dot;
  }
  return ext;
}

/** The longest start of `s` of at most `bytes` UTF-8 bytes that does not split a character. */
function cutToBytes(s: string, bytes: number): string {
  const buf = Buffer.from(s);
  if (buf.length <= bytes) return s;
  let end = Math.max(0, bytes);
  // back up to the start of a character (continuation bytes are 10xxxxxx)
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString();
}

/** A name's bytes as text: valid UTF-8 stays as it is; each byte of an invalid sequence becomes `%XX`. */
export function escapeNameBytes(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString();
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const len = utf8SequenceLength(bytes, i);
    if (len === 0) {
      out += `%${bytes[i]!.toString(16).toUpperCase().padStart(2, '0')}`;
      i++;
    } else {
      out += bytes.subarray(i, i + len).toString();
      i += len;
    }
  }
  return out;
}

/** The length of the valid UTF-8 sequence starting at `i`, or 0 if none starts there. */
function utf8SequenceLength(b: Buffer, i: number): number {
  const c = b[i]!;
  const len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (len === 0 || i + len > b.length) return 0;
  return isUtf8(b.subarray(i, i + len)) ? len : 0;
}

/** A name for a terminal: control characters (a newline, an escape sequence) shown as \n, \x1b, … */
export function printableName(name: string): string {
  return name.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => {
    const special: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    return special[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  });
}
