/**
 * Test helper: a transactional producer spoken over RawClient, one request at a time, for
 * tests that need exact control of the transaction protocol (which request is sent when,
 * with which epoch, and what the broker answers) — plus the read-side probes those tests
 * check against: a partition's high watermark and LSO, one decoded Fetch, and a partition
 * read in full under either isolation level, dropping aborted records under read_committed
 * exactly as a Kafka consumer does (test/helpers/read-all.ts stops at the LSO but keeps them).
 */
import { ApiKey, ErrorCode, type FetchResponsePartitionData } from '../../wire/index.js';
import { ControlRecordType, decodeBatchSync, decodeControlBatch, encodeBatchSync, splitBatches } from '../../wire/records/index.js';
import { RawClient } from './raw-client.js';
import { oneFetchRequest } from './topics.js';
import { waitFor } from './wait.js';

/** Request versions used unless a test names another. */
export const V = {
  InitProducerId: 4,
  AddPartitionsToTxn: 3,
  AddOffsetsToTxn: 3,
  EndTxn: 3,
  TxnOffsetCommit: 3,
  FindCoordinator: 3,
  Produce: 9,
} as const;

const KEY_TYPE_TRANSACTION = 1;
const KEY_TYPE_GROUP = 0;

/** The address (`host:port`) and node id of a transactional id's or group's coordinator. */
export async function findCoordinator(client: RawClient, key: string, kind: 'txn' | 'group'): Promise<{ errorCode: number; nodeId: number; address: string }> {
  const r = await client.send(ApiKey.FindCoordinator, V.FindCoordinator, { key, keyType: kind === 'txn' ? KEY_TYPE_TRANSACTION : KEY_TYPE_GROUP, coordinatorKeys: [] });
  return { errorCode: r.errorCode, nodeId: r.nodeId, address: `${r.host}:${r.port}` };
}

/** A transactional producer: id, epoch and per-partition sequence numbers, over one RawClient. */
export class RawTxnProducer {
  producerId = -1;
  producerEpoch = -1;
  /** Next sequence per `topic:partition`; sequences continue across transactions of one epoch. */
  readonly #sequences = new Map<string, number>();

  constructor(
    public client: RawClient,
    readonly transactionalId: string,
  ) {}

  /** InitProducerId; on success adopts the answered id and epoch (sequences restart at 0). */
  async init(timeoutMs: number, version: number = V.InitProducerId): Promise<{ errorCode: number; producerId: number; producerEpoch: number }> {
    const withCurrent = version >= 3 && this.producerId >= 0;
    const r = await this.client.send(ApiKey.InitProducerId, version, {
      transactionalId: this.transactionalId,
      transactionTimeoutMs: timeoutMs,
      producerId: withCurrent ? BigInt(this.producerId) : -1n,
      producerEpoch: withCurrent ? this.producerEpoch : -1,
    });
    if (r.errorCode === ErrorCode.NONE) {
      this.producerId = Number(r.producerId);
      this.producerEpoch = r.producerEpoch;
      this.#sequences.clear();
    }
    return { errorCode: r.errorCode, producerId: Number(r.producerId), producerEpoch: r.producerEpoch };
  }

  /** InitProducerId that must succeed. */
  async initOk(timeoutMs: number): Promise<void> {
    const r = await this.init(timeoutMs);
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`InitProducerId of ${this.transactionalId} failed with error ${r.errorCode}`);
  }

  /** AddPartitionsToTxn (v0–v3): the error code per partition, in request order. */
  async addPartitions(topic: string, partitions: number[], version: number = V.AddPartitionsToTxn): Promise<number[]> {
    const r = await this.client.send(ApiKey.AddPartitionsToTxn, version, {
      transactions: [],
      v3AndBelowTransactionalId: this.transactionalId,
      v3AndBelowProducerId: BigInt(this.producerId),
      v3AndBelowProducerEpoch: this.producerEpoch,
      v3AndBelowTopics: [{ name: topic, partitions }],
    });
    const byPartition = new Map(r.resultsByTopicV3AndBelow[0]!.resultsByPartition.map((p) => [p.partitionIndex, p.partitionErrorCode]));
    return partitions.map((p) => byPartition.get(p)!);
  }

  /** AddPartitionsToTxn that must succeed for every partition. */
  async addPartitionsOk(topic: string, partitions: number[]): Promise<void> {
    const codes = await this.addPartitions(topic, partitions);
    if (codes.some((c) => c !== ErrorCode.NONE)) throw new Error(`AddPartitionsToTxn ${topic} ${JSON.stringify(partitions)} answered ${JSON.stringify(codes)}`);
  }

  /**
   * Produces `values` as one transactional batch to `topic/partition`. The sequence advances
   * only when the broker accepted the batch (a refused batch is not retried by these tests).
   */
  async produce(topic: string, partition: number, values: readonly string[], options: { client?: RawClient; transactional?: boolean } = {}): Promise<{ errorCode: number; baseOffset: number }> {
    const key = `${topic}:${partition}`;
    const baseSequence = this.#sequences.get(key) ?? 0;
    const transactional = options.transactional ?? true;
    const records = encodeBatchSync(
      values.map((v, i) => ({ key: null, value: Buffer.from(v), timestamp: 1_700_000_000_000 + i })),
      { producerId: this.producerId, producerEpoch: this.producerEpoch, baseSequence, isTransactional: transactional },
    );
    const res = await (options.client ?? this.client).send(ApiKey.Produce, V.Produce, {
      transactionalId: this.transactionalId,
      acks: -1,
      timeoutMs: 5000,
      topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
    });
    const p = res.responses[0]!.partitionResponses[0]!;
    if (p.errorCode === ErrorCode.NONE) this.#sequences.set(key, baseSequence + values.length);
    return { errorCode: p.errorCode, baseOffset: Number(p.baseOffset) };
  }

  /** A produce that must succeed; returns the batch's base offset. */
  async produceOk(topic: string, partition: number, values: readonly string[]): Promise<number> {
    const r = await this.produce(topic, partition, values);
    if (r.errorCode !== ErrorCode.NONE) throw new Error(`transactional produce to ${topic}/${partition} failed with error ${r.errorCode}`);
    return r.baseOffset;
  }

  /** AddOffsetsToTxn. */
  async addOffsets(groupId: string, version: number = V.AddOffsetsToTxn): Promise<number> {
    const r = await this.client.send(ApiKey.AddOffsetsToTxn, version, { transactionalId: this.transactionalId, producerId: BigInt(this.producerId), producerEpoch: this.producerEpoch, groupId });
    return r.errorCode;
  }

  /**
   * TxnOffsetCommit to `groupClient` (the group's coordinator): per partition, its error code.
   * Without a generation (-1, empty member id) the group coordinator does not check membership.
   */
  async txnOffsetCommit(
    groupClient: RawClient,
    groupId: string,
    topic: string,
    offsets: { partition: number; offset: number }[],
    version: number = V.TxnOffsetCommit,
  ): Promise<number[]> {
    const r = await groupClient.send(ApiKey.TxnOffsetCommit, version, {
      transactionalId: this.transactionalId,
      groupId,
      producerId: BigInt(this.producerId),
      producerEpoch: this.producerEpoch,
      generationId: -1,
      memberId: '',
      groupInstanceId: null,
      topics: [{ name: topic, partitions: offsets.map((o) => ({ partitionIndex: o.partition, committedOffset: BigInt(o.offset), committedLeaderEpoch: -1, committedMetadata: null })) }],
    });
    return r.topics[0]!.partitions.map((p) => p.errorCode);
  }

  /** EndTxn: commit or abort. */
  async endTxn(commit: boolean, version: number = V.EndTxn): Promise<number> {
    const r = await this.client.send(ApiKey.EndTxn, version, { transactionalId: this.transactionalId, producerId: BigInt(this.producerId), producerEpoch: this.producerEpoch, committed: commit });
    return r.errorCode;
  }
}

/** A partition's high watermark and last stable offset (ListOffsets LATEST, both isolation levels). */
export async function stableOffsets(client: RawClient, topic: string, partition: number): Promise<{ hw: number; lso: number }> {
  const ask = async (isolationLevel: number): Promise<number> => {
    const res = await client.send(ApiKey.ListOffsets, 7, {
      replicaId: -1,
      isolationLevel,
      topics: [{ name: topic, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -1n, maxNumOffsets: 1 }] }],
      timeoutMs: 0,
    });
    const p = res.topics[0]!.partitions[0]!;
    if (p.errorCode !== ErrorCode.NONE) throw new Error(`ListOffsets of ${topic}/${partition} failed with error ${p.errorCode}`);
    return Number(p.offset);
  };
  return { hw: await ask(0), lso: await ask(1) };
}

/** Waits (bounded) until partitions 0…count-1 of `topic` are settled: no open transaction, LSO = hw. */
export async function waitSettled(client: RawClient, topic: string, count: number, what: string, timeoutMs: number, intervalMs: number): Promise<void> {
  await waitFor(
    what,
    () => Promise.all(Array.from({ length: count }, (_, i) => stableOffsets(client, topic, i))),
    (os) => os.every((o) => o.lso === o.hw),
    timeoutMs,
    intervalMs,
  );
}

/** One batch of a Fetch answer, decoded. */
export interface FetchedBatch {
  baseOffset: number;
  lastOffset: number;
  producerId: number;
  transactional: boolean;
  /** A transaction marker; `abort` tells which. */
  control: boolean;
  abort: boolean;
  records: { offset: number; value: string }[];
}

/** What one Fetch (v12) of one partition returned: the partition header and its batches. */
export interface FetchedPartition {
  errorCode: number;
  highWatermark: number;
  lastStableOffset: number;
  abortedTransactions: { producerId: number; firstOffset: number }[] | null;
  batches: FetchedBatch[];
  /** Data records of every batch (aborted ones included), with their batch's producer. */
  records: { offset: number; value: string; producerId: number; transactional: boolean }[];
  /** Control batches (transaction markers): offset, producer and whether it aborts. */
  markers: { offset: number; producerId: number; abort: boolean }[];
}

/** One Fetch of `topic/partition` from `offset`, read_committed or not, with no wait. */
export async function fetchOnce(client: RawClient, topic: string, partition: number, offset: number, readCommitted: boolean): Promise<FetchedPartition> {
  const res = await client.send(ApiKey.Fetch, 12, oneFetchRequest(topic, partition, BigInt(offset), readCommitted ? 1 : 0));
  const p: FetchResponsePartitionData = res.responses[0]!.partitions[0]!;
  const batches: FetchedBatch[] = [];
  for (const view of p.records === null ? [] : splitBatches(p.records as Buffer)) {
    const common = { baseOffset: view.baseOffset, lastOffset: view.baseOffset + view.lastOffsetDelta, producerId: view.producerId, transactional: view.isTransactional };
    if (view.isControl) {
      batches.push({ ...common, control: true, abort: decodeControlBatch(view).type === ControlRecordType.ABORT, records: [] });
    } else {
      const records = decodeBatchSync(view).records.map((r) => ({ offset: r.offset, value: r.value?.toString() ?? '' }));
      batches.push({ ...common, control: false, abort: false, records });
    }
  }
  return {
    errorCode: p.errorCode,
    highWatermark: Number(p.highWatermark),
    lastStableOffset: Number(p.lastStableOffset),
    abortedTransactions: p.abortedTransactions === null ? null : p.abortedTransactions.map((a) => ({ producerId: Number(a.producerId), firstOffset: Number(a.firstOffset) })),
    batches,
    records: batches.flatMap((b) => b.records.map((r) => ({ ...r, producerId: b.producerId, transactional: b.transactional }))),
    markers: batches.filter((b) => b.control).map((b) => ({ offset: b.baseOffset, producerId: b.producerId, abort: b.abort })),
  };
}

/**
 * The records of one read_committed Fetch answer that a Kafka consumer hands to its
 * application: a transactional batch is dropped while its producer has an aborted
 * transaction started at or before it and not yet closed by that producer's ABORT marker
 * (the consumer's rule, KIP-98).
 */
export function committedRecords(f: FetchedPartition): { offset: number; value: string; producerId: number }[] {
  const aborted = [...(f.abortedTransactions ?? [])].sort((a, b) => a.firstOffset - b.firstOffset);
  const open = new Set<number>();
  const out: { offset: number; value: string; producerId: number }[] = [];
  let next = 0;
  for (const b of f.batches) {
    while (next < aborted.length && aborted[next]!.firstOffset <= b.lastOffset) open.add(aborted[next++]!.producerId);
    if (b.control) {
      if (b.abort) open.delete(b.producerId);
      continue;
    }
    if (b.transactional && open.has(b.producerId)) continue;
    for (const r of b.records) out.push({ ...r, producerId: b.producerId });
  }
  return out;
}

/**
 * Reads one partition from offset 0 to its LSO (read_committed, aborted records dropped as a
 * consumer drops them) or to its high watermark (read_uncommitted, everything), as of the
 * first Fetch.
 */
export async function readPartition(client: RawClient, topic: string, partition: number, readCommitted: boolean): Promise<{ offset: number; value: string; producerId: number }[]> {
  const out: { offset: number; value: string; producerId: number }[] = [];
  let offset = 0;
  let end = Infinity;
  while (offset < end) {
    const f = await fetchOnce(client, topic, partition, offset, readCommitted);
    if (f.errorCode !== ErrorCode.NONE) throw new Error(`fetch ${topic}/${partition}@${offset}: error ${f.errorCode}`);
    if (end === Infinity) end = readCommitted ? f.lastStableOffset : f.highWatermark;
    if (f.batches.length === 0) break;
    const records = readCommitted ? committedRecords(f) : f.records;
    for (const r of records) if (r.offset >= offset && r.offset < end) out.push({ offset: r.offset, value: r.value, producerId: r.producerId });
    offset = f.batches[f.batches.length - 1]!.lastOffset + 1;
  }
  return out;
}

/** Opens a RawClient at `address` and runs `fn`, closing the client afterwards. */
export async function withClient<T>(address: string, fn: (c: RawClient) => Promise<T>, clientId = 'txn-test'): Promise<T> {
  const c = await RawClient.connect(address, clientId);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}
