import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { GROUP_BROKER_ARGS, commitOffsets, stableSingleMember } from '../helpers/raw-group.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';
import { RawTxnProducer } from '../helpers/raw-txn.js';

let cluster: Cluster;
let c: RawClient;

const TOPIC = 'toc';

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: [...GROUP_BROKER_ARGS, '--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'txn-offset-commit-test');
  await createTopic(c, TOPIC, 2);
});

afterAll(async () => {
  c?.close();
  await cluster?.stop();
});

async function producer(id: string): Promise<RawTxnProducer> {
  const p = new RawTxnProducer(c, id);
  await p.initOk(30_000);
  return p;
}

/** OffsetFetch v7 of TOPIC/0 and /1: [offset, error] per partition. */
async function fetched(groupId: string, requireStable: boolean): Promise<[number, number][]> {
  const r = await c.send(ApiKey.OffsetFetch, 7, { groupId, topics: [{ name: TOPIC, partitionIndexes: [0, 1] }], groups: [], requireStable });
  expect(r.errorCode).toBe(ErrorCode.NONE);
  return r.topics[0]!.partitions.map((p) => [Number(p.committedOffset), p.errorCode]);
}

/** OffsetFetch v8 (the per-group form) of TOPIC/0 and /1: [offset, error] per partition. */
async function fetchedV8(groupId: string, requireStable: boolean): Promise<[number, number][]> {
  const r = await c.send(ApiKey.OffsetFetch, 8, { groupId: '', topics: [], groups: [{ groupId, memberId: null, memberEpoch: -1, topics: [{ name: TOPIC, partitionIndexes: [0, 1] }] }], requireStable });
  const g = r.groups[0]!;
  expect(g.errorCode).toBe(ErrorCode.NONE);
  return g.topics[0]!.partitions.map((p) => [Number(p.committedOffset), p.errorCode]);
}

async function commitPlain(groupId: string, offset: number): Promise<void> {
  const r = await commitOffsets(c, 8, { groupId, topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, committedOffset: BigInt(offset) }] }] });
  expect(r.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE);
}

const NONE = ErrorCode.NONE;
const UNSTABLE = ErrorCode.UNSTABLE_OFFSET_COMMIT;

describe('TxnOffsetCommit', () => {
  it('stages offsets: requireStable answers UNSTABLE_OFFSET_COMMIT until EndTxn commit, then the new offsets', async () => {
    const group = 'toc-commit';
    await commitPlain(group, 5);
    const p = await producer('toc-commit');
    expect(await p.addOffsets(group)).toBe(NONE);
    expect(await p.txnOffsetCommit(c, group, TOPIC, [{ partition: 0, offset: 10 }, { partition: 1, offset: 20 }])).toEqual([NONE, NONE]);
    expect(await fetched(group, true)).toEqual([[-1, UNSTABLE], [-1, UNSTABLE]]);
    expect(await fetchedV8(group, true)).toEqual([[-1, UNSTABLE], [-1, UNSTABLE]]);
    // Without requireStable: the committed offsets, untouched by the open transaction.
    expect(await fetched(group, false)).toEqual([[5, NONE], [-1, NONE]]);
    expect(await p.endTxn(true)).toBe(NONE);
    expect(await fetched(group, true)).toEqual([[10, NONE], [20, NONE]]);
    expect(await fetchedV8(group, true)).toEqual([[10, NONE], [20, NONE]]);
  });

  it('EndTxn abort drops the staged offsets: the old ones stay', async () => {
    const group = 'toc-abort';
    await commitPlain(group, 7);
    const p = await producer('toc-abort');
    expect(await p.addOffsets(group)).toBe(NONE);
    expect(await p.txnOffsetCommit(c, group, TOPIC, [{ partition: 0, offset: 70 }])).toEqual([NONE]);
    expect(await fetched(group, true)).toEqual([[-1, UNSTABLE], [-1, NONE]]);
    expect(await p.endTxn(false)).toBe(NONE);
    expect(await fetched(group, true)).toEqual([[7, NONE], [-1, NONE]]);
  });

  it.each([0, 1, 2, 3, 4])('v%i answers per topic and partition', async (v) => {
    const group = `toc-v${v}`;
    const p = await producer(group);
    expect(await p.addOffsets(group)).toBe(NONE);
    const r = await c.send(ApiKey.TxnOffsetCommit, v, {
      transactionalId: group,
      groupId: group,
      producerId: BigInt(p.producerId),
      producerEpoch: p.producerEpoch,
      generationId: -1,
      memberId: '',
      groupInstanceId: null,
      topics: [
        { name: TOPIC, partitions: [{ partitionIndex: 1, committedOffset: 3n, committedLeaderEpoch: -1, committedMetadata: 'm' }, { partitionIndex: 9, committedOffset: 3n, committedLeaderEpoch: -1, committedMetadata: null }] },
        { name: 'toc-no-such-topic', partitions: [{ partitionIndex: 0, committedOffset: 3n, committedLeaderEpoch: -1, committedMetadata: null }] },
      ],
    });
    expect(r).toEqual({
      throttleTimeMs: 0,
      topics: [
        { name: TOPIC, partitions: [{ partitionIndex: 1, errorCode: NONE }, { partitionIndex: 9, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
        { name: 'toc-no-such-topic', partitions: [{ partitionIndex: 0, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }] },
      ],
    });
    expect(await p.endTxn(true)).toBe(NONE);
    const committed = await c.send(ApiKey.OffsetFetch, 7, { groupId: group, topics: [{ name: TOPIC, partitionIndexes: [1] }], groups: [], requireStable: true });
    expect(committed.topics[0]!.partitions[0]).toEqual({ partitionIndex: 1, committedOffset: 3n, committedLeaderEpoch: -1, metadata: 'm', errorCode: NONE });
  });

  it('refuses an empty group id with INVALID_GROUP_ID', async () => {
    const p = await producer('toc-empty-group');
    expect(await p.txnOffsetCommit(c, '', TOPIC, [{ partition: 0, offset: 1 }])).toEqual([ErrorCode.INVALID_GROUP_ID]);
  });

  it('v3+ checks the member and generation of a group with members (KIP-447)', async () => {
    const group = 'toc-member';
    const member = await stableSingleMember(c, group, [TOPIC], { [TOPIC]: [0, 1] });
    const p = await producer(group);
    expect(await p.addOffsets(group)).toBe(NONE);
    const send = (generationId: number, memberId: string) =>
      c.send(ApiKey.TxnOffsetCommit, 3, {
        transactionalId: group,
        groupId: group,
        producerId: BigInt(p.producerId),
        producerEpoch: p.producerEpoch,
        generationId,
        memberId,
        groupInstanceId: null,
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, committedOffset: 4n, committedLeaderEpoch: -1, committedMetadata: null }] }],
      });
    expect((await send(member.generationId + 1, member.memberId)).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect((await send(member.generationId, 'not-a-member')).topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await send(member.generationId, member.memberId)).topics[0]!.partitions[0]!.errorCode).toBe(NONE);
    expect(await p.endTxn(true)).toBe(NONE);
    expect(await fetched(group, true)).toEqual([[4, NONE], [-1, NONE]]);
  });

  // A zombie (an instance fenced by a newer InitProducerId) keeps its producer id; only its
  // epoch is old. Kafka fences its TxnOffsetCommit through the producer epoch check of the
  // offsets log; without that check, the zombie's offsets land in the new instance's
  // transaction (same producer id) and are committed with it.
  it('refuses a fenced producer epoch, and its offsets never reach the group', async () => {
    const group = 'toc-zombie';
    await commitPlain(group, 1);
    const zombie = await producer('toc-zombie');
    expect(await zombie.addOffsets(group)).toBe(NONE);
    const current = await producer('toc-zombie');
    expect(current.producerId).toBe(zombie.producerId);
    const codes = await zombie.txnOffsetCommit(c, group, TOPIC, [{ partition: 0, offset: 999 }]);
    expect.soft([ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH]).toContain(codes[0]);
    // Nothing is pending for the group: requireStable answers at once.
    expect.soft(await fetched(group, true)).toEqual([[1, NONE], [-1, NONE]]);
    // The new instance commits offsets of partition 1 only: partition 0 keeps its offset.
    expect(await current.addOffsets(group)).toBe(NONE);
    expect(await current.txnOffsetCommit(c, group, TOPIC, [{ partition: 1, offset: 2 }])).toEqual([NONE]);
    expect(await current.endTxn(true)).toBe(NONE);
    expect(await fetched(group, true)).toEqual([[1, NONE], [2, NONE]]);
  });
});
