import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, type ProduceRequest } from '../../wire/index.js';
import { decodeBatchSync, encodeBatchSync, splitBatches } from '../../wire/records/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

let cluster: Cluster;
let client: RawClient;

beforeAll(async () => {
  cluster = await startCluster();
  client = await RawClient.connect(cluster.bootstrap);
  const created = await client.send(19, 5, {
    topics: [
      { name: 'produce-test', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [] },
      { name: 'idempotence-test', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
    ],
    timeoutMs: 10000,
    validateOnly: false,
  });
  expect(created.topics.map((t) => t.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.NONE]);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function batch(values: string[], producer?: { id: number; epoch: number; seq: number }): Buffer {
  return encodeBatchSync(
    values.map((v, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(v), timestamp: 1_700_000_000_000 + i })),
    producer ? { producerId: producer.id, producerEpoch: producer.epoch, baseSequence: producer.seq } : {},
  );
}

function produceBody(topic: string, parts: { partition: number; records: Buffer }[], acks = -1): ProduceRequest {
  return { transactionalId: null, acks, timeoutMs: 5000, topicData: [{ name: topic, partitionData: parts.map((p) => ({ index: p.partition, records: p.records })) }] };
}

async function fetchAll(topic: string, partition: number, from = 0): Promise<{ offset: number; value: string }[]> {
  const res = await client.send(1, 11, {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 10_000_000,
    isolationLevel: 0,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic, topicId: 'AAAAAAAAAAAAAAAAAAAAAA', partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: BigInt(from), lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 10_000_000, replicaDirectoryId: 'AAAAAAAAAAAAAAAAAAAAAA' }] }],
    forgottenTopicsData: [],
    rackId: '',
  });
  const p = res.responses[0]!.partitions[0]!;
  expect(p.errorCode).toBe(ErrorCode.NONE);
  const out: { offset: number; value: string }[] = [];
  for (const view of splitBatches(p.records as Buffer)) {
    expect(view.verifyCrc()).toBe(true);
    for (const r of decodeBatchSync(view).records) out.push({ offset: r.offset, value: r.value!.toString() });
  }
  return out;
}

describe('Produce', () => {
  it('assigns contiguous offsets and fetch returns the records with their offsets', async () => {
    const r1 = await client.send(0, 9, produceBody('produce-test', [{ partition: 0, records: batch(['a', 'b', 'c']) }]));
    expect(r1.responses[0]!.partitionResponses[0]).toMatchObject({ index: 0, errorCode: ErrorCode.NONE, baseOffset: 0n, logStartOffset: 0n });
    const r2 = await client.send(0, 9, produceBody('produce-test', [{ partition: 0, records: batch(['d', 'e']) }]));
    expect(r2.responses[0]!.partitionResponses[0]!.baseOffset).toBe(3n);
    expect(await fetchAll('produce-test', 0)).toEqual([
      { offset: 0, value: 'a' },
      { offset: 1, value: 'b' },
      { offset: 2, value: 'c' },
      { offset: 3, value: 'd' },
      { offset: 4, value: 'e' },
    ]);
    // A fetch offset inside a batch returns that whole batch.
    expect((await fetchAll('produce-test', 0, 4)).map((r) => r.offset)).toEqual([3, 4]);
  });

  it('fails only the partition whose batch is corrupt', async () => {
    const bad = batch(['x']);
    bad[bad.length - 1]! ^= 0xff;
    const res = await client.send(0, 9, produceBody('produce-test', [
      { partition: 1, records: bad },
      { partition: 0, records: batch(['f']) },
    ]));
    const parts = res.responses[0]!.partitionResponses;
    expect(parts[0]).toMatchObject({ index: 1, errorCode: ErrorCode.CORRUPT_MESSAGE });
    expect(parts[1]).toMatchObject({ index: 0, errorCode: ErrorCode.NONE, baseOffset: 5n });
    expect(await fetchAll('produce-test', 1)).toEqual([]);
  });

  it('answers unknown partitions and topics with UNKNOWN_TOPIC_OR_PARTITION', async () => {
    const res = await client.send(0, 9, produceBody('produce-test', [{ partition: 7, records: batch(['x']) }]));
    expect(res.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    const res2 = await client.send(0, 9, produceBody('no-such-topic', [{ partition: 0, records: batch(['x']) }]));
    expect(res2.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
  });
});

describe('idempotent produce', () => {
  it('stores a duplicate once and answers it with the original offset', async () => {
    const producer = { id: 4242, epoch: 0, seq: 0 };
    const body = produceBody('idempotence-test', [{ partition: 0, records: batch(['one', 'two'], producer) }]);
    const first = await client.send(0, 9, body);
    const second = await client.send(0, 9, produceBody('idempotence-test', [{ partition: 0, records: batch(['one', 'two'], producer) }]));
    expect(first.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    expect(second.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    expect(await fetchAll('idempotence-test', 0)).toEqual([
      { offset: 0, value: 'one' },
      { offset: 1, value: 'two' },
    ]);
  });

  it('rejects a sequence gap with OUT_OF_ORDER_SEQUENCE_NUMBER', async () => {
    const res = await client.send(0, 9, produceBody('idempotence-test', [{ partition: 0, records: batch(['gap'], { id: 4242, epoch: 0, seq: 5 }) }]));
    expect(res.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER);
    const next = await client.send(0, 9, produceBody('idempotence-test', [{ partition: 0, records: batch(['three'], { id: 4242, epoch: 0, seq: 2 }) }]));
    expect(next.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 2n });
  });
});
