// fileBytes on an open file ({ fd, size }): exact bytes for small, empty, large, grown, shrunk and gzip files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { lastValueFrom, toArray } from 'rxjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fileBytes, type FileBytesOptions, type OpenFile } from '../../src/sources/file-bytes.js';
import { pattern } from './bytes.js';

let dir: string;
let serial = 0;
const fds: number[] = [];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-file-bytes-'));
});

afterEach(() => {
  for (const fd of fds.splice(0)) fs.closeSync(fd);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Writes `content` to a new file and opens it; `size` is what fstat says unless given. */
function openFile(content: Buffer | string, size?: number): OpenFile & { file: string } {
  const file = path.join(dir, `f${serial++}`);
  fs.writeFileSync(file, content);
  const fd = fs.openSync(file, 'r');
  fds.push(fd);
  return { file, fd, size: size ?? fs.fstatSync(fd).size };
}

async function chunksOf(f: OpenFile, options?: FileBytesOptions): Promise<Buffer[]> {
  return lastValueFrom(fileBytes({ fd: f.fd, size: f.size }, options).pipe(toArray()));
}

function csv(rows: number): string {
  let s = 'id,name,amount\n';
  for (let i = 0; i < rows; i++) s += `${i},name-${i},${(i * 7) % 1000}.${i % 100}\n`;
  return s;
}

describe('fileBytes(OpenFile)', () => {
  it('emits a small file whole, in one chunk', async () => {
    const content = 'id,name\n1,ann\n2,bob\n';
    const f = openFile(content);
    const chunks = await chunksOf(f);
    expect(chunks.map((c) => c.toString('utf8'))).toEqual([content]);
  });

  it('emits a file one byte short of the chunk size in one chunk', async () => {
    const content = pattern(1023, 3);
    const f = openFile(content);
    const chunks = await chunksOf(f, { chunkSize: 1024 });
    expect(chunks.length).toBe(1);
    expect(chunks[0]!.equals(content)).toBe(true);
  });

  it('emits nothing for an empty file, and completes', async () => {
    const f = openFile('');
    expect(f.size).toBe(0);
    await expect(chunksOf(f)).resolves.toEqual([]);
  });

  it('leaves the fd open: it is the caller to close', async () => {
    const f = openFile('a,b\n');
    await chunksOf(f);
    expect(fs.fstatSync(f.fd).size).toBe(4);
  });

  it('emits a large file exactly, in chunks of chunkSize', async () => {
    const content = pattern(10 * 1024 + 37, 5);
    const f = openFile(content);
    const chunks = await chunksOf(f, { chunkSize: 1024 });
    expect(chunks.map((c) => c.length)).toEqual([...Array<number>(10).fill(1024), 37]);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });

  it('emits a file of exactly a multiple of chunkSize exactly', async () => {
    const content = pattern(4 * 1024, 6);
    const f = openFile(content);
    const chunks = await chunksOf(f, { chunkSize: 1024 });
    expect(chunks.map((c) => c.length)).toEqual([1024, 1024, 1024, 1024]);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });

  it('emits a file of exactly chunkSize bytes exactly', async () => {
    const content = pattern(1024, 8);
    const f = openFile(content);
    const chunks = await chunksOf(f, { chunkSize: 1024 });
    expect(chunks.map((c) => c.length)).toEqual([1024]);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });

  it('emits a multi-megabyte file exactly with the default chunk size', async () => {
    const content = pattern(3 * 1024 * 1024 + 999, 9);
    const f = openFile(content);
    const chunks = await chunksOf(f);
    expect(chunks.length).toBe(49);
    expect(Buffer.concat(chunks).equals(content)).toBe(true);
  });

  describe('a file that grew after fstat (size smaller than the file)', () => {
    it('emits every byte when the file was small at fstat and grew past a chunk', async () => {
      const start = Buffer.from('id,name\n1,ann\n');
      const f = openFile(start);
      expect(f.size).toBe(14);
      const more = pattern(5000, 10);
      fs.appendFileSync(f.file, more); // grows after the fstat
      const chunks = await chunksOf(f, { chunkSize: 1024 });
      expect(Buffer.concat(chunks).equals(Buffer.concat([start, more]))).toBe(true);
    });

    it('emits every byte when the file grew by a single byte', async () => {
      const content = Buffer.from('abcdef');
      const f = openFile(content, 5);
      const chunks = await chunksOf(f);
      expect(Buffer.concat(chunks).toString()).toBe('abcdef');
    });

    it('emits every byte when fstat said the file was empty', async () => {
      const content = pattern(300, 11);
      const f = openFile(content, 0);
      const chunks = await chunksOf(f, { chunkSize: 1024 });
      expect(Buffer.concat(chunks).equals(content)).toBe(true);
    });

    it('reads on by whole chunks once the first read comes back full (not size + 1 bytes at a time)', async () => {
      const content = pattern(5000, 12);
      const f = openFile(content, 10);
      const chunks = await chunksOf(f, { chunkSize: 1024 });
      expect(chunks.map((c) => c.length)).toEqual([11, 1024, 1024, 1024, 1024, 893]);
      expect(Buffer.concat(chunks).equals(content)).toBe(true);
    });

    it('emits every byte when the file was large at fstat and grew', async () => {
      const start = pattern(2048 + 100, 12);
      const f = openFile(start);
      const more = pattern(7000, 13);
      fs.appendFileSync(f.file, more);
      const chunks = await chunksOf(f, { chunkSize: 1024 });
      expect(Buffer.concat(chunks).equals(Buffer.concat([start, more]))).toBe(true);
    });

    it('emits every byte at the default chunk size', async () => {
      const content = pattern(200_000, 14);
      const f = openFile(content, 1000);
      const chunks = await chunksOf(f);
      expect(Buffer.concat(chunks).equals(content)).toBe(true);
    });
  });

  describe('a file that shrank after fstat (size larger than the file)', () => {
    it('emits the real bytes of a small file and completes', async () => {
      const content = pattern(100, 15);
      const f = openFile(content, 500);
      const chunks = await chunksOf(f);
      expect(Buffer.concat(chunks).equals(content)).toBe(true);
    });

    it('emits the real bytes when the file was truncated after fstat', async () => {
      const f = openFile(pattern(5000, 16));
      expect(f.size).toBe(5000);
      fs.truncateSync(f.file, 3000);
      const chunks = await chunksOf(f, { chunkSize: 1024 });
      expect(chunks.map((c) => c.length)).toEqual([1024, 1024, 952]);
      expect(Buffer.concat(chunks).equals(pattern(5000, 16).subarray(0, 3000))).toBe(true);
    });

    it('emits nothing when the file was emptied, and completes', async () => {
      const f = openFile(pattern(2000, 17));
      fs.truncateSync(f.file, 0);
      await expect(chunksOf(f, { chunkSize: 1024 })).resolves.toEqual([]);
      const small = openFile(pattern(20, 18));
      fs.truncateSync(small.file, 0);
      await expect(chunksOf(small, { chunkSize: 1024 })).resolves.toEqual([]);
    });
  });

  describe('gzip', () => {
    it('decompresses a gzip file that fstat said was empty (the first read asks for two bytes at least)', async () => {
      const text = csv(3);
      const f = openFile(gzipSync(Buffer.from(text)), 0);
      const chunks = await chunksOf(f);
      expect(Buffer.concat(chunks).toString('utf8')).toBe(text);
    });

    it('decompresses a small gzip file given as OpenFile', async () => {
      const text = csv(5);
      const f = openFile(gzipSync(Buffer.from(text)));
      expect(f.size).toBeLessThan(64 * 1024);
      const chunks = await chunksOf(f);
      expect(Buffer.concat(chunks).toString('utf8')).toBe(text);
    });

    it('decompresses a gzip file read in many chunks', async () => {
      const text = csv(20_000);
      const gz = gzipSync(Buffer.from(text));
      expect(gz.length).toBeGreaterThan(10 * 1024);
      const f = openFile(gz);
      const chunks = await chunksOf(f, { chunkSize: 1024 });
      expect(Buffer.concat(chunks).toString('utf8')).toBe(text);
    });

    it('passes the gzip bytes through with decompress: none', async () => {
      const gz = gzipSync(Buffer.from(csv(50)));
      const f = openFile(gz);
      const chunks = await chunksOf(f, { decompress: 'none' });
      expect(Buffer.concat(chunks).equals(gz)).toBe(true);
    });

    it('fails with GZIP_INVALID on damaged gzip data', async () => {
      const gz = gzipSync(Buffer.from(csv(50)));
      const damaged = Buffer.concat([gz.subarray(0, 10), Buffer.from('this is not deflate data at all')]);
      const f = openFile(damaged);
      await expect(chunksOf(f)).rejects.toMatchObject({ code: 'GZIP_INVALID' });
    });

    it('does not decompress a file that merely starts with 0x1f', async () => {
      const content = Buffer.from([0x1f, 0x41, 0x42, 0x0a]);
      const f = openFile(content);
      const chunks = await chunksOf(f);
      expect(Buffer.concat(chunks).equals(content)).toBe(true);
    });
  });

  describe('onRead', () => {
    it('sees the raw bytes of a plain file, in total its size', async () => {
      const content = pattern(5000, 19);
      const f = openFile(content);
      const seen: Buffer[] = [];
      const chunks = await chunksOf(f, { chunkSize: 1024, onRead: (c) => seen.push(Buffer.from(c)) });
      expect(seen.reduce((n, c) => n + c.length, 0)).toBe(5000);
      expect(Buffer.concat(seen).equals(content)).toBe(true);
      expect(Buffer.concat(chunks).equals(content)).toBe(true);
    });

    it('sees the compressed bytes of a gzip file, in total its size', async () => {
      const text = csv(3000);
      const gz = gzipSync(Buffer.from(text));
      const f = openFile(gz);
      const seen: Buffer[] = [];
      const chunks = await chunksOf(f, { chunkSize: 1024, onRead: (c) => seen.push(Buffer.from(c)) });
      expect(seen.reduce((n, c) => n + c.length, 0)).toBe(f.size);
      expect(Buffer.concat(seen).equals(gz)).toBe(true);
      expect(Buffer.concat(chunks).toString('utf8')).toBe(text);
    });

    it('sees the bytes of a small file once, and nothing for an empty file', async () => {
      const seen: number[] = [];
      await chunksOf(openFile('a,b\n1,2\n'), { onRead: (c) => seen.push(c.length) });
      expect(seen).toEqual([8]);
      const none: number[] = [];
      await chunksOf(openFile(''), { onRead: (c) => none.push(c.length) });
      expect(none).toEqual([]);
    });
  });
});
