// Every file error code carries its retry class; the daemon asks the registry, not the codes.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, FILE_ERROR_CODES, retryClassOf, retryOf, SluiceError } from '../../src/errors.js';

const errno = (code: string) => Object.assign(new Error(code), { code });

describe('retry classes', () => {
  it('are: backoff for a changed input, wait for the sink, requeue on a stop, disk for writes, never otherwise', () => {
    const classes = Object.fromEntries(Object.keys(FILE_ERROR_CODES).map((c) => [c, retryClassOf(c as keyof typeof FILE_ERROR_CODES)]));
    const special = Object.fromEntries(Object.entries(classes).filter(([, r]) => r !== 'never'));
    expect(special).toEqual({ INPUT_CHANGED: 'backoff', WORKER_FAILED: 'backoff', SINK_UNAVAILABLE: 'sink', WRITE_FAILED: 'disk', ABORTED: 'requeue' });
    for (const code of Object.keys(ERROR_CODES)) if (!(code in FILE_ERROR_CODES)) expect(retryClassOf(code as keyof typeof ERROR_CODES)).toBe('never');
  });

  it('resolves a write error by its cause: a disk error that may pass is retried, any other fails the file', () => {
    const write = (cause: unknown) => new SluiceError('WRITE_FAILED', 'could not write', { cause });
    expect(retryOf(write(errno('ENOSPC')))).toBe('backoff');
    expect(retryOf(write(Object.assign(new Error('wrapped'), { cause: errno('EIO') })))).toBe('backoff');
    expect(retryOf(write(errno('ENOENT')))).toBe('never');
    expect(retryOf(write(new Error('no errno')))).toBe('never');
    expect(retryOf(new SluiceError('DB_REFUSED', 'refused'))).toBe('never');
    expect(retryOf(new SluiceError('SINK_UNAVAILABLE', 'down'))).toBe('sink');
  });
});
