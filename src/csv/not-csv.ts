// What a CSV reader refuses at its first chunk: a file that is plainly not CSV text. Binary (NUL bytes)
// and JSON (an object or an array where a header should be) fail the file with a code, instead of
// "succeeding" as a CSV of junk rows.
import { SluiceError } from '../errors.js';

/** Throws BINARY_FILE or FORMAT_UNSUPPORTED if the first chunk (`chunk`, in `whole` bytes) says so. */
export function refuseNotCsv(chunk: Buffer, whole: Buffer = chunk): void {
  if (whole.indexOf(0) !== -1) throw new SluiceError('BINARY_FILE', 'the file holds NUL bytes: it is binary, not CSV text');
  if (looksLikeJson(chunk)) {
    throw new SluiceError(
      'FORMAT_UNSUPPORTED',
      'the file is JSON (it starts with an object or an array of them), not CSV; JSON is read from .ndjson, .jsonl and .json files, or with input.format: ndjson or json',
    );
  }
}

function looksLikeJson(b: Buffer): boolean {
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  const skip = (): void => {
    while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
  };
  skip();
  const open = b[i];
  if (open !== 0x7b && open !== 0x5b) return false; // { or [
  i++;
  skip();
  const next = b[i];
  // {"key" or {}  |  [{ or [[ or [] or ["…  (a CSV header has no reason to start so)
  return open === 0x7b ? next === 0x22 || next === 0x7d : next === 0x7b || next === 0x5b || next === 0x5d || next === 0x22;
}
