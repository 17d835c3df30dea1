/**
 * Test helper: the small admin and data steps handler tests repeat — create a topic (the
 * harness's `createTopic`), produce values, read a partition's offsets or a topic's configs —
 * over a RawClient, failing loudly (with the broker's message) when a step the test relies on
 * does not succeed.
 */
import { ErrorCode, ZERO_UUID, type FetchRequest } from '../../wire/index.js';
import { decodeBatchSync, encodeBatchSync, splitBatches } from '../../wire/records/index.js';
import type { RawClient } from './raw-client.js';

export { createTopic } from '../../src/harness/wire-client.js';

/** Produces `values` as one batch (acks -1) and returns the batch's base offset. */
export async function produce(
  client: RawClient,
  topic: string,
  partition: number,
  values: readonly string[],
  producer?: { producerId: number; producerEpoch: number; baseSequence: number },
): Promise<{ errorCode: number; baseOffset: bigint }> {
  const records = encodeBatchSync(
    values.map((v, i) => ({ key: null, value: Buffer.from(v), timestamp: 1_700_000_000_000 + i })),
    producer ?? {},
  );
  const res = await client.send(0, 9, { transactionalId: null, acks: -1, timeoutMs: 5000, topicData: [{ name: topic, partitionData: [{ index: partition, records }] }] });
  const p = res.responses[0]!.partitionResponses[0]!;
  return { errorCode: p.errorCode, baseOffset: p.baseOffset };
}

/** Produces `values` and throws unless the broker accepted them. */
export async function produceOk(client: RawClient, topic: string, partition: number, values: readonly string[]): Promise<bigint> {
  const r = await produce(client, topic, partition, values);
  if (r.errorCode !== ErrorCode.NONE) throw new Error(`produce to ${topic}/${partition} failed with error ${r.errorCode}`);
  return r.baseOffset;
}

/** A partition's log start offset and high watermark (ListOffsets v7 EARLIEST and LATEST). */
export async function partitionOffsets(client: RawClient, topic: string, partition: number): Promise<{ logStart: bigint; hw: bigint }> {
  const ask = async (timestamp: bigint): Promise<bigint> => {
    const res = await client.send(2, 7, {
      replicaId: -1,
      isolationLevel: 0,
      topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp, maxNumOffsets: 1 }] }],
      timeoutMs: 0,
    });
    const p = res.topics[0]!.partitions[0]!;
    if (p.errorCode !== ErrorCode.NONE) throw new Error(`list offsets of ${topic}/${partition} failed with error ${p.errorCode}`);
    return p.offset;
  };
  return { logStart: await ask(-2n), hw: await ask(-1n) };
}

/** A Fetch v12 body for one partition from `offset`, answered at once, up to 10 MB. */
export function oneFetchRequest(topic: string, partition: number, offset: bigint, isolationLevel: 0 | 1): FetchRequest {
  return {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs: 0,
    minBytes: 0,
    maxBytes: 10_000_000,
    isolationLevel,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [
      {
        topic,
        topicId: ZERO_UUID,
        partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: offset, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 10_000_000, replicaDirectoryId: ZERO_UUID }],
      },
    ],
    forgottenTopicsData: [],
    rackId: '',
  };
}

/** Fetch v12 of one partition from `offset`: the error code and the offsets of the records returned. */
export async function fetchFrom(client: RawClient, topic: string, partition: number, offset: bigint): Promise<{ errorCode: number; offsets: number[]; values: string[] }> {
  const res = await client.send(1, 12, oneFetchRequest(topic, partition, offset, 0));
  const p = res.responses[0]!.partitions[0]!;
  const offsets: number[] = [];
  const values: string[] = [];
  if (p.records !== null) {
    for (const view of splitBatches(p.records as Buffer)) {
      for (const r of decodeBatchSync(view).records) {
        offsets.push(r.offset);
        values.push(r.value?.toString() ?? '');
      }
    }
  }
  return { errorCode: p.errorCode, offsets, values };
}

/** A topic's configs as DescribeConfigs v4 reports them: name → value and source. */
export async function topicConfigs(client: RawClient, topic: string): Promise<Record<string, { value: string | null; source: number }>> {
  const res = await client.send(32, 4, {
    resources: [{ resourceType: 2, resourceName: topic, configurationKeys: null }],
    includeSynonyms: false,
    includeDocumentation: false,
  });
  const r = res.results[0]!;
  if (r.errorCode !== ErrorCode.NONE) throw new Error(`describe configs of ${topic} failed with error ${r.errorCode}: ${r.errorMessage}`);
  return Object.fromEntries(r.configs.map((c) => [c.name, { value: c.value, source: c.configSource }]));
}

/** The topic config overrides (source TOPIC_CONFIG) of a topic, name → value. */
export async function topicOverrides(client: RawClient, topic: string): Promise<Record<string, string | null>> {
  const all = await topicConfigs(client, topic);
  return Object.fromEntries(Object.entries(all).filter(([, c]) => c.source === 1).map(([n, c]) => [n, c.value]));
}
