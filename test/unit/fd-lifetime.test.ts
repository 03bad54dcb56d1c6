// File descriptors are plain numbers now, and the kernel hands a closed number to the next open: a read or
// write still queued in the thread pool when its fd is closed lands in whatever file gets the number next.
// Here the disk is slow (each thread-pool read and write completes a few turns late) and the tests check
// that no fd is closed while an operation on it is in flight, when a file fails early or is aborted.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const inFlight = new Map<number, number>();
const closedWhileBusy: number[] = [];

/** Completes a callback a few event-loop turns late: a slow disk, without timers. */
function late(cb: () => void, turns = 5): void {
  if (turns === 0) cb();
  else setImmediate(() => late(cb, turns - 1));
}

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const track = (fd: number, delta: number): void => void inFlight.set(fd, (inFlight.get(fd) ?? 0) + delta);
  type Io = (fd: number, buf: Buffer, off: number, len: number, pos: number | null, cb: (err: Error | null, n: number) => void) => void;
  /** fs.read or fs.write, counted while in flight and completing late. */
  const slow =
    (io: Io): Io =>
    (fd, buf, off, len, pos, cb) => {
      track(fd, 1);
      io(fd, buf, off, len, pos, (err, n) =>
        late(() => {
          track(fd, -1);
          cb(err, n);
        }),
      );
    };
  return {
    ...actual,
    read: slow(actual.read) as typeof actual.read,
    write: slow(actual.write) as typeof actual.write,
    closeSync: (fd: number) => {
      if ((inFlight.get(fd) ?? 0) > 0) closedWhileBusy.push(fd);
      actual.closeSync(fd);
    },
  };
});

const { processFile } = await import('../../src/pipeline/process-file.js');
const { rowOperator } = await import('../../src/operators/row-operator.js');
const { AtomicFile } = await import('../../src/fs/atomic-file.js');
const { SluiceError } = await import('../../src/errors.js');
const { csvFileSink } = await import('../../src/sinks/csv-file.js');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-fdlife-'));
  inFlight.clear();
  closedWhileBusy.length = 0;
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A CSV file of `rows` rows, several 64 KiB chunks long. */
function bigCsv(rows: number): string {
  let s = 'id,name\n';
  for (let i = 0; i < rows; i++) s += `${i},name-${i}\n`;
  return s;
}

describe('fd lifetime', () => {
  it('a file that fails on its header does not close its input while the read ahead is queued', async () => {
    const input = path.join(dir, 'in.csv');
    fs.writeFileSync(input, bigCsv(20_000)); // about 300 KB: read in chunks through the pool, one ahead
    const failOnHeader = rowOperator(() => {
      throw new SluiceError('UNKNOWN_COLUMN', 'no such column', { field: 'x' });
    });
    const r = await processFile(input, 'in.csv', {
      outDir: dir,
      sink: (ctx, file) => csvFileSink(dir, ctx.name, { tempTag: file.tempTag, fsync: file.fsync, mode: file.mode }),
      rejectsDir: dir,
      csv: {},
      steps: [failOnHeader],
      batch: { size: 100, maxWaitMs: 1000 },
      highWaterMark: 1000,
      fsync: false,
      tempTag: 't',
    });
    expect(r.outcome).toBe('failed');
    expect(r.error?.code).toBe('UNKNOWN_COLUMN');
    expect(closedWhileBusy).toEqual([]);
    expect([...inFlight.values()].every((n) => n === 0)).toBe(true);
  });

  it('aborting a file while a large write is in the pool closes it only after the write', async () => {
    const file = await AtomicFile.create(dir, 'out.csv', { fsync: false, tempTag: 't' });
    const writing = file.write(Buffer.alloc(200 * 1024, 0x61)); // above 64 KiB: through the pool
    const aborting = file.abort();
    await Promise.all([writing.catch(() => undefined), aborting]);
    expect(closedWhileBusy).toEqual([]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('a write after the file was closed fails instead of reaching another file', async () => {
    const file = await AtomicFile.create(dir, 'out.csv', { fsync: false, tempTag: 't' });
    await file.abort();
    await expect(file.write('late\n')).rejects.toThrow('is closed');
  });
});
