/**
 * The segment layout over the producers' own buffers, the write cache's byte ranges over those
 * pieces, and the reader returning the same batches from the write cache as from the store.
 */
import { describe, expect, it } from 'vitest';
import type { PartitionStore } from '../../src/log/partition-store.js';
import { ByteLru } from '../../src/log/cache.js';
import { LogReader } from '../../src/log/reader.js';
import { SEGMENT_HEADER_BYTES, SegmentPieces, buildSegment, readSegmentFooter, type SegmentPart } from '../../src/log/segment.js';
import { StorageError } from '../../src/storage/object-store.js';
import { MemoryObjectStore } from '../../src/storage/memory.js';
import { decodeBatch, encodeBatchSync, splitBatches, type RecordBatchView } from '../../wire/records/index.js';
import { freshPartition, plain, withPartitionStore } from '../helpers/partition-store.js';
import { Rng } from '../helpers/rng.js';

let state: PartitionStore;
withPartitionStore((env) => ({ state } = env));

/** `count` batches of 1–5 records each, every batch its own buffer as a producer sends it. */
function batches(rng: Rng, count: number, tag: string): RecordBatchView[] {
  return Array.from({ length: count }, (_, b) => {
    const records = Array.from({ length: rng.int(1, 5) }, (_, i) => ({
      key: Buffer.from(`${tag}-${b}-${i}`),
      value: rng.bytes(rng.int(0, 300)),
      headers: [],
      timestamp: 1000 + b * 10 + i,
    }));
    return splitBatches(encodeBatchSync(records))[0]!;
  });
}

function parts(rng: Rng): SegmentPart[] {
  return [
    { topicId: freshPartition().topicId, partition: 0, batches: batches(rng, 3, 'a') },
    { topicId: freshPartition().topicId, partition: 7, batches: batches(rng, 1, 'b') },
    { topicId: freshPartition().topicId, partition: 2, batches: batches(rng, 4, 'c') },
  ];
}

describe('buildSegment', () => {
  it('lays the producers’ batch buffers between header and footer without copying them', () => {
    const input = parts(new Rng(11));
    const { pieces, byteLength, chunks } = buildSegment(input);
    const all = input.flatMap((p) => p.batches);
    expect(pieces).toHaveLength(all.length + 2);
    all.forEach((view, i) => expect(pieces[i + 1]).toBe(view.bytes));
    const joined = Buffer.concat(pieces);
    expect(joined.length).toBe(byteLength);
    expect(readSegmentFooter(joined)).toEqual(chunks);
    expect(chunks[0]!.byteStart).toBe(SEGMENT_HEADER_BYTES);
    input.forEach((p, i) => {
      const chunk = chunks[i]!;
      expect([chunk.topicId, chunk.partition]).toEqual([p.topicId, p.partition]);
      expect(joined.subarray(chunk.byteStart, chunk.byteStart + chunk.byteLength)).toEqual(Buffer.concat(p.batches.map((b) => b.bytes)));
    });
  });
});

describe('SegmentPieces.range', () => {
  const pieces = [Buffer.from('01234567'), Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cdefghij'), Buffer.from('XYZ')];
  const joined = Buffer.concat(pieces);
  const segment = new SegmentPieces(pieces);

  it('gives every range’s exact bytes', () => {
    expect(segment.length).toBe(21);
    for (let start = 0; start <= joined.length; start++) {
      for (let end = start; end <= joined.length; end++) {
        expect(Buffer.concat(segment.range(start, end - start)), `${start}..${end}`).toEqual(joined.subarray(start, end));
      }
    }
  });

  it('returns whole pieces themselves, cuts only the ends, and never an empty piece', () => {
    const whole = segment.range(8, 10);
    expect(whole).toHaveLength(2);
    expect(whole[0]).toBe(pieces[1]);
    expect(whole[1]).toBe(pieces[3]);
    expect(segment.range(3, 8).map((b) => b.toString())).toEqual(['34567', 'ab', 'c']);
    expect(segment.range(10, 0)).toEqual([]);
  });

  it('refuses a range outside the segment', () => {
    expect(() => segment.range(20, 2)).toThrow(RangeError);
    expect(() => segment.range(-1, 1)).toThrow(RangeError);
  });
});

describe('LogReader', () => {
  /**
   * Stores one segment of `input` (in the write cache too, when it has room) and returns a
   * reader over the store and cache, the object key and the chunk table; nothing is committed.
   */
  async function storedSegment(input: SegmentPart[], writeCacheBytes: number) {
    const store = new MemoryObjectStore();
    const writeCache = new ByteLru<SegmentPieces>(writeCacheBytes);
    const reader = new LogReader(store, state, writeCache, new ByteLru(1 << 20), 256);
    const { pieces, chunks } = buildSegment(input);
    const key = `data/test/${input[0]!.topicId}.seg`;
    await store.put(key, pieces);
    writeCache.set(key, new SegmentPieces(pieces));
    return { reader, key, chunks };
  }

  /** Stores one segment of `input`, commits its chunks, and returns a reader over it. */
  async function committedSegment(input: SegmentPart[], writeCacheBytes: number) {
    const { reader, key, chunks } = await storedSegment(input, writeCacheBytes);
    const refs = input.map((p) => ({ topicId: p.topicId, partition: p.partition }));
    await state.commit(
      key,
      chunks.map((chunk, i) => {
        let at = chunk.byteStart;
        return {
          ref: refs[i]!,
          batches: chunk.batches.map((b) => {
            const batch = plain(at, b.byteLength, b.recordCount - 1, b.maxTimestamp);
            at += b.byteLength;
            return batch;
          }),
        };
      }),
    );
    return { reader, refs };
  }

  /** Every record of `records`' batches as offset, key and value. */
  async function decoded(records: Buffer[]): Promise<string[]> {
    const out: string[] = [];
    for (const view of records.flatMap((b) => splitBatches(b))) {
      for (const r of (await decodeBatch(view)).records) out.push(`${view.baseOffset + r.offsetDelta}:${r.key?.toString()}:${r.value?.toString('hex')}`);
    }
    return out;
  }

  it('reads the same batches, with offsets, from the write cache as from the store', async () => {
    const input = parts(new Rng(5));
    const expected = await Promise.all(
      input.map(async (p) => {
        const out: string[] = [];
        let offset = 0;
        for (const view of p.batches) {
          for (const r of (await decodeBatch(view)).records) out.push(`${offset + r.offsetDelta}:${r.key?.toString()}:${r.value?.toString('hex')}`);
          offset += view.lastOffsetDelta + 1;
        }
        return out;
      }),
    );
    for (const cacheBytes of [1 << 20, 0]) {
      const { reader, refs } = await committedSegment(parts(new Rng(5)), cacheBytes);
      for (let i = 0; i < refs.length; i++) {
        for (const fetchOffset of [0, 1]) {
          const res = await reader.read({ ref: refs[i]!, fetchOffset, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false });
          expect(res.errorCode, `partition ${i} cache ${cacheBytes}`).toBe(0);
          const firstBatchEnd = input[i]!.batches[0]!.lastOffsetDelta + 1;
          // A fetch from inside the first batch returns it whole.
          const want = fetchOffset < firstBatchEnd ? expected[i] : expected[i]!.filter((r) => Number(r.split(':')[0]) >= firstBatchEnd);
          expect(await decoded(res.records), `partition ${i} from ${fetchOffset} cache ${cacheBytes}`).toEqual(want);
        }
      }
    }
  });

  it('fails a read whose index range does not hold whole batches, naming the byte, instead of returning a cut batch', async () => {
    const input = parts(new Rng(9));
    for (const cacheBytes of [1 << 20, 0]) {
      const { reader, key, chunks } = await storedSegment(input, cacheBytes);
      const [first, second] = chunks[0]!.batches;
      const start = chunks[0]!.byteStart;
      const ref = freshPartition();
      // One index run over the first two batches, 10 bytes short: the second batch is cut.
      // From the write cache it is the run's second piece, from the store inside its only one.
      await state.commit(key, [
        { ref, batches: [plain(start, first!.byteLength, first!.recordCount - 1), plain(start + first!.byteLength, second!.byteLength - 10, second!.recordCount - 1)] },
      ]);
      const err = await reader.read({ ref, fetchOffset: 0, maxBytes: 1 << 20, minOneBatch: true, readCommitted: false }).catch((e: unknown) => e);
      expect(err, `cache ${cacheBytes}`).toBeInstanceOf(StorageError);
      expect((err as Error).message, `cache ${cacheBytes}`).toContain(`has no whole batch at byte ${start + first!.byteLength} `);
    }
  });
});
