/**
 * Memory store specifics: fault and latency injection, named shared buckets. The ObjectStore
 * behaviour itself is covered by contract.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { ObjectNotFoundError, StorageError } from '../../src/errors.js';
import { MemoryObjectStore, type FaultContext } from '../../src/storage/memory.js';
import type { ObjectInfo } from '../../src/storage/object-store.js';

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const info of iterable) out.push(info);
  return out;
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryObjectStore faults', () => {
  it('failNext fails exactly the next N operations of that kind, without storing', async () => {
    const store = new MemoryObjectStore();
    store.faults.failNext('put', 2);
    for (let i = 0; i < 2; i++) {
      const err = await failure(store.put('k', Buffer.from('v')));
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ code: ErrorCode.KAFKA_STORAGE_ERROR, retriable: true, message: 'injected put failure on memory:// (k)' });
      expect(await store.head('k')).toBeNull();
    }
    await store.put('k', Buffer.from('v'));
    expect((await store.get('k')).toString()).toBe('v');
    expect(store.stats()).toMatchObject({ puts: 3, errors: 2, bytesWritten: 1 });
  });

  it('failNext for one kind leaves the other kinds alone', async () => {
    const store = new MemoryObjectStore();
    await store.put('k', Buffer.from('v'));
    store.faults.failNext('get');
    expect(await store.head('k')).toEqual({ key: 'k', size: 1 });
    await store.put('k2', Buffer.from('w'));
    await expect(store.get('k')).rejects.toBeInstanceOf(StorageError);
    expect((await store.get('k')).toString()).toBe('v');
  });

  it('failNext accepts several kinds, shared by one count', async () => {
    const store = new MemoryObjectStore();
    store.faults.failNext(['head', 'list'], 2);
    await expect(store.head('a')).rejects.toBeInstanceOf(StorageError);
    await expect(collect(store.list(''))).rejects.toBeInstanceOf(StorageError);
    expect(await store.head('a')).toBeNull();
    expect(await collect(store.list(''))).toEqual([]);
  });

  it('failNext throws the given error as is', async () => {
    const store = new MemoryObjectStore();
    const custom = new StorageError('throttled by test', { retriable: false });
    store.faults.failNext('delete', 1, { error: custom });
    expect(await failure(store.delete(['x']))).toBe(custom);
    const plain = new Error('plain');
    store.faults.failNext('head', 1, plain);
    expect(await failure(store.head('x'))).toBe(plain);
  });

  it("when: 'after' applies the put and still fails, like a lost response", async () => {
    const store = new MemoryObjectStore();
    store.faults.failNext('put', 1, { when: 'after' });
    await expect(store.put('k', Buffer.from('durable'))).rejects.toBeInstanceOf(StorageError);
    expect((await store.get('k')).toString()).toBe('durable');
  });

  it("when: 'after' applies the delete and still fails", async () => {
    const store = new MemoryObjectStore();
    await store.put('k', Buffer.from('v'));
    store.faults.failNext('delete', 1, { when: 'after' });
    await expect(store.delete(['k'])).rejects.toBeInstanceOf(StorageError);
    expect(await store.head('k')).toBeNull();
  });

  it('failWhile fails matching operations until removed', async () => {
    const store = new MemoryObjectStore();
    const seen: FaultContext[] = [];
    const stop = store.faults.failWhile((ctx) => {
      seen.push(ctx);
      return ctx.keys.some((k) => k.startsWith('bad/'));
    });
    await store.put('good/1', Buffer.from('g'));
    await expect(store.put('bad/1', Buffer.from('b'))).rejects.toBeInstanceOf(StorageError);
    await expect(store.delete(['good/1', 'bad/2'])).rejects.toBeInstanceOf(StorageError);
    expect(seen).toEqual([
      { op: 'put', keys: ['good/1'] },
      { op: 'put', keys: ['bad/1'] },
      { op: 'delete', keys: ['good/1', 'bad/2'] },
    ]);
    stop();
    await store.put('bad/1', Buffer.from('b'));
    expect((await collect(store.list(''))).map((o) => o.key)).toEqual(['bad/1', 'good/1']);
  });

  it('setFailureRate fails a fraction of the chosen kinds, drawn from the given random source', async () => {
    const draws = [0.1, 0.6, 0.49, 0.5];
    const store = new MemoryObjectStore({ random: () => draws.shift()! });
    await store.put('k', Buffer.from('v'));
    store.faults.setFailureRate(0.5, ['get']);
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(await store.get('k').then((b) => b.toString(), (e: unknown) => (e as Error).name));
    }
    expect(outcomes).toEqual(['StorageError', 'v', 'StorageError', 'v']);
    await store.put('k2', Buffer.from('w'));
  });

  it('setFailureRate(1) fails every operation; reset() clears every rule', async () => {
    const store = new MemoryObjectStore();
    store.faults.setFailureRate(1);
    store.faults.failWhile(() => true);
    store.faults.setLatency(10_000);
    for (const op of [() => store.put('k', Buffer.alloc(1)), () => store.head('k')]) {
      store.faults.reset();
      await op();
      store.faults.setFailureRate(1);
      await expect(op()).rejects.toBeInstanceOf(StorageError);
    }
  });

  it('rejects nonsensical fault settings with RangeError', () => {
    const store = new MemoryObjectStore();
    expect(() => store.faults.failNext('put', 0)).toThrow(RangeError);
    expect(() => store.faults.setFailureRate(1.5)).toThrow(RangeError);
    expect(() => store.faults.setLatency(-1)).toThrow(RangeError);
    expect(() => store.faults.setLatency({ min: 10, max: 5 })).toThrow(RangeError);
  });

  it('a missing key stays ObjectNotFoundError, not an injected failure', async () => {
    const store = new MemoryObjectStore();
    await expect(store.get('absent')).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(store.stats().errors).toBe(0);
  });
});

describe('MemoryObjectStore latency', () => {
  it('delays the chosen kinds by a fixed time', async () => {
    vi.useFakeTimers();
    const store = new MemoryObjectStore();
    store.faults.setLatency(50, ['put']);
    let done = false;
    const put = store.put('k', Buffer.from('v')).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(49);
    expect(done).toBe(false);
    expect(await store.head('k')).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    await put;
    expect(done).toBe(true);
    expect(await store.head('k')).toEqual({ key: 'k', size: 1 });
  });

  it('draws a delay from a range', async () => {
    vi.useFakeTimers();
    const store = new MemoryObjectStore({ random: () => 0.25 });
    store.faults.setLatency({ min: 100, max: 200 });
    let done = false;
    const head = store.head('k').then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(124);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await head;
    expect(done).toBe(true);
  });

  it('applies latency before a failure', async () => {
    vi.useFakeTimers();
    const store = new MemoryObjectStore();
    store.faults.setLatency(30, ['get']);
    store.faults.failNext('get');
    let settled = false;
    const get = store.get('k').catch((e: unknown) => {
      settled = true;
      return e;
    });
    await vi.advanceTimersByTimeAsync(29);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await get).toBeInstanceOf(StorageError);
  });
});

describe('MemoryObjectStore sharing', () => {
  it('stores opened with the same name share objects but not faults or counters', async () => {
    const name = `shared-${Math.random().toString(36).slice(2)}`;
    const a = new MemoryObjectStore({ name });
    const b = new MemoryObjectStore({ name });
    const other = new MemoryObjectStore();
    expect(a.url).toBe(`memory://${name}`);
    await a.put('k', Buffer.from('from a'));
    expect((await b.get('k')).toString()).toBe('from a');
    expect(await other.head('k')).toBeNull();
    a.faults.failNext('get');
    expect((await b.get('k')).toString()).toBe('from a');
    expect(a.stats().puts).toBe(1);
    expect(b.stats().puts).toBe(0);
  });
});
