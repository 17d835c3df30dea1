/**
 * Test helper: reads every record of a topic back through a real Fetch (RawClient) and
 * decodes it with the project's record codec, for exact-data assertions.
 */
import { ErrorCode, ZERO_UUID } from '../../wire/index.js';
import { decodeBatch, splitBatches } from '../../wire/records/index.js';
import { RawClient } from './raw-client.js';
import { oneFetchRequest } from './topics.js';

/** One record as read back. */
export interface ReadRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: [string, string | null][];
  timestamp: number;
}

/**
 * Reads partitions of `topic` from `fromOffset` up to their high watermark at the time of
 * the call (read_uncommitted unless `readCommitted`). Keys and values are decoded as UTF-8.
 */
export async function readAll(
  bootstrap: string,
  topic: string,
  options: { partitions?: number[]; fromOffset?: number; readCommitted?: boolean } = {},
): Promise<ReadRecord[]> {
  const client = await RawClient.connect(bootstrap, 'read-all');
  try {
    const meta = await client.send(3, 9, { topics: [{ topicId: ZERO_UUID, name: topic }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    const t = meta.topics[0]!;
    if (t.errorCode !== ErrorCode.NONE) throw new Error(`metadata for ${topic}: error ${t.errorCode}`);
    const partitions = options.partitions ?? t.partitions.map((p) => p.partitionIndex).sort((a, b) => a - b);
    const out: ReadRecord[] = [];
    for (const partition of partitions) {
      let offset = options.fromOffset ?? 0;
      let hw = Infinity;
      while (offset < hw) {
        const res = await client.send(1, 11, oneFetchRequest(topic, partition, BigInt(offset), options.readCommitted ? 1 : 0));
        const p = res.responses[0]!.partitions[0]!;
        if (p.errorCode !== ErrorCode.NONE) throw new Error(`fetch ${topic}/${partition}@${offset}: error ${p.errorCode}`);
        if (hw === Infinity) hw = Number(options.readCommitted ? p.lastStableOffset : p.highWatermark);
        const batches = splitBatches(p.records as Buffer);
        if (batches.length === 0) break;
        for (const view of batches) {
          if (!view.verifyCrc()) throw new Error(`CRC mismatch in ${topic}/${partition} at ${view.baseOffset}`);
          if (view.isControl) {
            offset = view.baseOffset + view.lastOffsetDelta + 1;
            continue;
          }
          const decoded = await decodeBatch(view);
          for (const r of decoded.records) {
            if (r.offset < offset || r.offset >= hw) continue;
            out.push({
              partition,
              offset: r.offset,
              key: r.key === null ? null : r.key.toString(),
              value: r.value === null ? null : r.value.toString(),
              headers: r.headers.map((h) => [h.key, h.value === null ? null : h.value.toString()]),
              timestamp: r.timestamp,
            });
          }
          offset = view.baseOffset + view.lastOffsetDelta + 1;
        }
      }
    }
    return out;
  } finally {
    client.close();
  }
}
