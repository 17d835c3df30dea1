import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic, fetchFrom, partitionOffsets, produceOk } from '../helpers/topics.js';

let cluster: Cluster;
let client: RawClient;

beforeAll(async () => {
  cluster = await startCluster();
  client = await RawClient.connect(cluster.bootstrap);
  await createTopic(client, 'records', 2);
  // Offsets 0–2, 3–4 and 5 in three batches (each its own commit).
  await produceOk(client, 'records', 0, ['r0', 'r1', 'r2']);
  await produceOk(client, 'records', 0, ['r3', 'r4']);
  await produceOk(client, 'records', 0, ['r5']);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function deleteBody(topic: string, partitions: { partitionIndex: number; offset: bigint }[]) {
  return { topics: [{ name: topic, partitions }], timeoutMs: 5000 };
}

describe('DeleteRecords', () => {
  it('v0 moves the log start offset and answers it as the low watermark', async () => {
    const res = await client.send(21, 0, deleteBody('records', [{ partitionIndex: 0, offset: 3n }]));
    expect(res.topics).toEqual([{ name: 'records', partitions: [{ partitionIndex: 0, lowWatermark: 3n, errorCode: ErrorCode.NONE }] }]);
    expect(await partitionOffsets(client, 'records', 0)).toEqual({ logStart: 3n, hw: 6n });
    expect(await fetchFrom(client, 'records', 0, 2n)).toEqual({ errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, offsets: [], values: [] });
    expect(await fetchFrom(client, 'records', 0, 3n)).toEqual({ errorCode: ErrorCode.NONE, offsets: [3, 4, 5], values: ['r3', 'r4', 'r5'] });
  });

  it('an offset below the current log start changes nothing and answers the current one', async () => {
    const res = await client.send(21, 1, deleteBody('records', [{ partitionIndex: 0, offset: 1n }]));
    expect(res.topics[0]!.partitions).toEqual([{ partitionIndex: 0, lowWatermark: 3n, errorCode: ErrorCode.NONE }]);
    expect(await partitionOffsets(client, 'records', 0)).toEqual({ logStart: 3n, hw: 6n });
  });

  it('an offset beyond the high watermark is OFFSET_OUT_OF_RANGE with low watermark -1', async () => {
    const res = await client.send(21, 2, deleteBody('records', [{ partitionIndex: 0, offset: 7n }]));
    expect(res.topics[0]!.partitions).toEqual([{ partitionIndex: 0, lowWatermark: -1n, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE }]);
    expect(await partitionOffsets(client, 'records', 0)).toEqual({ logStart: 3n, hw: 6n });
  });

  it('v2 with offset -1 deletes up to the high watermark, on an empty partition too', async () => {
    const res = await client.send(21, 2, deleteBody('records', [
      { partitionIndex: 0, offset: -1n },
      { partitionIndex: 1, offset: -1n },
    ]));
    expect(res.topics[0]!.partitions).toEqual([
      { partitionIndex: 0, lowWatermark: 6n, errorCode: ErrorCode.NONE },
      { partitionIndex: 1, lowWatermark: 0n, errorCode: ErrorCode.NONE },
    ]);
    expect(await partitionOffsets(client, 'records', 0)).toEqual({ logStart: 6n, hw: 6n });
    // New records after the deletion are readable from the new log start.
    expect(await produceOk(client, 'records', 0, ['r6'])).toBe(6n);
    expect(await fetchFrom(client, 'records', 0, 6n)).toEqual({ errorCode: ErrorCode.NONE, offsets: [6], values: ['r6'] });
  });

  it('answers unknown partitions and topics with UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const res = await client.send(21, 2, {
      topics: [
        { name: 'records', partitions: [{ partitionIndex: 2, offset: 0n }] },
        { name: 'no-such-topic', partitions: [{ partitionIndex: 0, offset: 0n }] },
      ],
      timeoutMs: 5000,
    });
    expect(res.topics).toEqual([
      { name: 'records', partitions: [{ partitionIndex: 2, lowWatermark: -1n, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
      { name: 'no-such-topic', partitions: [{ partitionIndex: 0, lowWatermark: -1n, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
    ]);
  });
});
