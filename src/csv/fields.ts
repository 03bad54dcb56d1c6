// CSV fields as rejects files and re-encoded rows write them: text quoted where needed, raw bytes kept as they are.

const QUOTE = 0x22;

/** A CSV field: quoted (quotes doubled) when it holds a delimiter, quote or line break. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The original bytes as one quoted CSV field, without decoding them. */
export function rawField(raw: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from('"')];
  let from = 0;
  for (let i = raw.indexOf(QUOTE); i !== -1; i = raw.indexOf(QUOTE, i + 1)) {
    parts.push(raw.subarray(from, i + 1), Buffer.from('"'));
    from = i + 1;
  }
  parts.push(raw.subarray(from), Buffer.from('"'));
  return Buffer.concat(parts);
}
