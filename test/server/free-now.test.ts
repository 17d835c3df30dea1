/**
 * freeNow: a partial frame's memory is detached (and so freed) at once when its connection
 * closes, and only a buffer that is the whole of its memory is ever touched.
 */
import { describe, expect, it } from 'vitest';
import { FREE_NOW_MIN_BYTES, freeNow } from '../../src/server/free-now.js';

describe('freeNow', () => {
  it('detaches a large buffer that owns its whole ArrayBuffer', () => {
    const b = Buffer.allocUnsafe(FREE_NOW_MIN_BYTES * 2).fill(7);
    const memory = b.buffer;
    expect(freeNow(b)).toBe(true);
    expect([memory.byteLength, b.length]).toEqual([0, 0]);
  });

  it('leaves small buffers, views and pooled buffers alone', () => {
    const small = Buffer.allocUnsafe(FREE_NOW_MIN_BYTES - 1).fill(1);
    const whole = Buffer.allocUnsafe(FREE_NOW_MIN_BYTES * 2).fill(2);
    const view = whole.subarray(0, FREE_NOW_MIN_BYTES);
    const pooled = Buffer.from('pooled');
    expect([freeNow(small), freeNow(view), freeNow(pooled)]).toEqual([false, false, false]);
    expect([small.length, small[0], view.length, whole.length, whole[FREE_NOW_MIN_BYTES], pooled.toString()]).toEqual([FREE_NOW_MIN_BYTES - 1, 1, FREE_NOW_MIN_BYTES, FREE_NOW_MIN_BYTES * 2, 2, 'pooled']);
  });
});
