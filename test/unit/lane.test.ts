// The main thread's lane (workers/lane.ts): held and released once per take, told when it comes free, closed by the tests' failpoint.
import { describe, expect, it } from 'vitest';
import { Lane } from '../../src/workers/lane.js';

describe('Lane', () => {
  it('is free when nothing holds it; a release counts once; listeners hear when it comes free', () => {
    const lane = new Lane(true);
    const heard: boolean[] = [];
    const off = lane.onFree(() => heard.push(lane.free));
    const a = lane.take();
    const b = lane.take();
    expect(lane.free).toBe(false);
    a();
    a();
    expect(lane.free).toBe(false);
    expect(heard).toEqual([]);
    b();
    expect(lane.free).toBe(true);
    expect(heard).toEqual([true]);
    off();
    lane.take()();
    expect(heard).toEqual([true]);
  });

  it('a closed lane is never free', () => {
    const lane = new Lane(false);
    expect(lane.free).toBe(false);
  });
});
