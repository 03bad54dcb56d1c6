// decodeText: latin1, windows-1252 and UTF-16 to UTF-8, chunk by chunk; invalid UTF-16 fails the file.
import { from, lastValueFrom, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { decodeText, type InputEncoding } from '../../src/operators/decode-text.js';

/** Decodes `input` cut at every position, and checks every cut gives `expected` (UTF-8 text). */
async function everyCut(input: Buffer, encoding: InputEncoding, expected: string): Promise<void> {
  for (let i = 0; i <= input.length; i++) {
    const out = await lastValueFrom(from([input.subarray(0, i), input.subarray(i)]).pipe(decodeText(encoding), toArray()));
    expect({ cut: i, text: Buffer.concat(out).toString('utf8') }).toEqual({ cut: i, text: expected });
  }
}

const utf16le = (s: string): Buffer => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(s, 'utf16le')]);

describe('decodeText', () => {
  it('passes UTF-8 through untouched', async () => {
    await everyCut(Buffer.from('a,b\n1,é\n'), 'utf8', 'a,b\n1,é\n');
  });

  it('decodes latin1 and windows-1252 (0x80 is the euro sign only in windows-1252)', async () => {
    await everyCut(Buffer.from([0x61, 0x0a, 0xe9, 0x80, 0x0a]), 'latin1', 'a\né\u0080\n');
    await everyCut(Buffer.from([0x61, 0x0a, 0xe9, 0x80, 0x0a]), 'windows-1252', 'a\né€\n');
  });

  it('decodes UTF-16 by its byte order mark, with characters split across chunks, surrogate pairs included', async () => {
    await everyCut(utf16le('a,b\n1,é😀\n'), 'utf8', 'a,b\n1,é😀\n');
    const be = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('x\n', 'utf16le').swap16()]);
    await everyCut(be, 'utf8', 'x\n');
  });

  it('fails the file with ENCODING_INVALID on a lone surrogate or an odd final byte, instead of writing U+FFFD', async () => {
    const lone = Buffer.concat([utf16le('a\n1,'), Buffer.from([0x00, 0xd8]), Buffer.from('\n', 'utf16le')]);
    await expect(lastValueFrom(from([lone]).pipe(decodeText('utf8'), toArray()))).rejects.toMatchObject({ code: 'ENCODING_INVALID' });
    const odd = Buffer.concat([utf16le('a\n1\n'), Buffer.from([0x41])]);
    await expect(lastValueFrom(from([odd]).pipe(decodeText('utf8'), toArray()))).rejects.toMatchObject({ code: 'ENCODING_INVALID' });
  });
});
