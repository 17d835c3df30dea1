/**
 * Test helper: partition logs over a real Redis (withPartitionStore) and a real file store in
 * a temporary directory, for the tests of the jobs that rewrite runs (object compaction, the
 * log cleaner) and of what they leave. One started writer log per file; `partitionLog` makes
 * more over the same Redis and store (a cold one, cache 0, reads as another broker would).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { PartitionLog } from '../../src/log/partition-log.js';
import type { PartitionStore } from '../../src/log/partition-store.js';
import { silentLogger } from '../../src/observability/logger.js';
import { FileObjectStore } from '../../src/storage/file.js';
import { withPartitionStore } from './partition-store.js';

export interface PartitionLogEnv {
  redis: Redis;
  state: PartitionStore;
  store: FileObjectStore;
  /** Started with `nodeId`; its write cache (16 MiB) holds what it flushed. */
  writer: PartitionLog;
  /** A partition log over the same Redis and store, not started, with this write cache. */
  partitionLog(writeCacheBytes: number): PartitionLog;
}

/** Sets the environment up before the file's tests and tears it down after them. */
export function withPartitionLogs(options: { nodeId: number; blockSizeBytes: number; dirPrefix: string }, ready: (env: PartitionLogEnv) => void): void {
  let redis: Redis;
  let state: PartitionStore;
  let dir: string | undefined;
  let store: FileObjectStore | undefined;
  let writer: PartitionLog | undefined;
  withPartitionStore((env) => ({ redis, state } = env));
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), options.dirPrefix));
    const files = new FileObjectStore(pathToFileURL(dir).href, { fsync: false });
    store = files;
    const partitionLog = (writeCacheBytes: number): PartitionLog =>
      new PartitionLog({
        partitions: state,
        store: files,
        writeCacheBytes,
        blockCacheBytes: 4 << 20,
        blockSizeBytes: options.blockSizeBytes,
        maxDecompressedBatchBytes: 1 << 20,
        flushMs: 1,
        flushBytes: 1 << 20,
      });
    writer = partitionLog(16 << 20);
    writer.start(options.nodeId, silentLogger());
    ready({ redis, state, store: files, writer, partitionLog });
  });
  afterAll(async () => {
    await writer?.drain();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
}
