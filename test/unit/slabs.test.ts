// Reused memory for encoded output (fs/slabs.ts): slabs come back and are given out again, a bounded
// number and size of them is kept, and text is encoded into a caller's scratch slab.
import { describe, expect, it } from 'vitest';
import { encodeInto, giveSlabs, SLAB_BYTES, takeSlab } from '../../src/fs/slabs.js';

describe('slabs', () => {
  it('a slab given back is given out again; one made for a large batch is not kept', () => {
    const a = takeSlab(10);
    expect(a.byteLength).toBe(SLAB_BYTES);
    giveSlabs([a]);
    expect(takeSlab(10)).toBe(a);
    const big = takeSlab(8 * SLAB_BYTES);
    expect(big.byteLength).toBe(8 * SLAB_BYTES);
    giveSlabs([big]);
    expect(takeSlab(8 * SLAB_BYTES)).not.toBe(big);
  });

  it('at most 8 free slabs are kept', () => {
    const many = Array.from({ length: 12 }, () => takeSlab(1));
    giveSlabs(many);
    const again = new Set(Array.from({ length: 12 }, () => takeSlab(1)));
    expect(many.filter((s) => again.has(s))).toHaveLength(8);
  });

  it('encodes into the scratch slab while it is large enough, and gives it back when it must grow', () => {
    const first = encodeInto('héllo', undefined);
    expect(first.bytes.toString('utf8')).toBe('héllo');
    const same = encodeInto('again', first.scratch);
    expect(same.scratch).toBe(first.scratch);
    const grown = encodeInto('x'.repeat(SLAB_BYTES + 1), same.scratch);
    expect(grown.scratch.length).toBeGreaterThan(SLAB_BYTES);
    expect(grown.bytes.length).toBe(SLAB_BYTES + 1);
    // the slab it outgrew is free again
    expect(takeSlab(1)).toBe(first.scratch.buffer);
  });
});
