// What tests ask of a call that must refuse: the SluiceError it throws (anything else fails the test).
import { SluiceError } from '../../src/errors.js';

export function sluiceErrorOf(fn: () => unknown): SluiceError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SluiceError) return err;
    throw err;
  }
  throw new Error('expected a SluiceError');
}

/** The SluiceError a promise rejects with (a resolution, or anything else, fails the test). */
export async function caught(p: Promise<unknown>): Promise<SluiceError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SluiceError) return err;
    throw err;
  }
  throw new Error('expected a SluiceError');
}
