/**
 * kafkajs consumer groups against Strata: three consumers share a six-partition topic of
 * 30,000 records produced up front, then one leaves and the other two take its partitions
 * over; and the kafkajs admin's group operations (describeGroups, listGroups, fetchOffsets,
 * resetOffsets, setOffsets, deleteGroups) with the exact values Kafka gives.
 *
 * Consumers commit after every batch (kafkajs autoCommit commits once a batch is processed and
 * again before it rejoins), and start processing only once all three hold their share of one
 * generation, so every rebalance is clean: the assertion is every record exactly once.
 */
import kafkajs, { type Admin, type Consumer, type Kafka as KafkaClient, type Message } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { uniqueTopic } from '../helpers/compat.js';
import { committedOffsets, endOffsets, expectConsumedExactlyOnce, expectContiguousOffsets, type ConsumedRecord } from '../helpers/consumer-groups.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel, AssignerProtocol } = kafkajs;

const PARTITIONS = 6;
const FIRST_BATCH = 30_000;
const SECOND_BATCH = 3_000;

let cluster: Cluster;
let admin: Admin;
const consumers: Consumer[] = [];

function kafka(clientId: string): KafkaClient {
  return new Kafka({ clientId, brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 8 } });
}

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--group-initial-rebalance-delay-ms', '1000', '--group-min-session-timeout-ms', '1000'] });
  admin = kafka('groups-admin').admin();
  await admin.connect();
});

afterAll(async () => {
  await Promise.all(consumers.map((c) => c.disconnect().catch(() => undefined)));
  await admin?.disconnect().catch(() => undefined);
  await cluster?.stop();
});

async function produce(topic: string, from: number, count: number, tag: string): Promise<string[]> {
  const producer = kafka(`producer-${tag}`).producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const values: string[] = [];
  try {
    for (let i = from; i < from + count; i += 1000) {
      const messages: Message[] = [];
      for (let j = i; j < Math.min(i + 1000, from + count); j++) {
        messages.push({ key: `key-${j % 997}`, value: `${tag}-value-${j}` });
        values.push(`${tag}-value-${j}`);
      }
      await producer.send({ topic, acks: -1, messages });
    }
  } finally {
    await producer.disconnect();
  }
  return values;
}

/** A group member that records what it consumes and its latest assignment. */
class Member {
  readonly consumer: Consumer;
  readonly consumed: ConsumedRecord[] = [];
  assignment: number[] | null = null;
  joins = 0;

  constructor(
    readonly name: string,
    groupId: string,
    /** Processing waits until this says every member holds its share of one generation. */
    readonly gate: () => boolean,
  ) {
    this.consumer = kafka(name).consumer({ groupId, sessionTimeout: 10_000, rebalanceTimeout: 20_000, heartbeatInterval: 500, maxWaitTimeInMs: 200, retry: { retries: 8 } });
    consumers.push(this.consumer);
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.joins++;
      this.assignment = Object.values(e.payload.memberAssignment).flat().sort((a, b) => a - b);
    });
  }

  async start(topic: string): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [topic], fromBeginning: true });
    await this.consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset }) => {
        // Not yet (or a batch of a partition this member no longer holds): leave it unresolved,
        // kafkajs fetches it again from the same offset.
        if (!this.gate() || !this.assignment?.includes(batch.partition)) {
          await new Promise((r) => setTimeout(r, 50));
          return;
        }
        for (const m of batch.messages) {
          this.consumed.push({ consumer: this.name, partition: batch.partition, offset: Number(m.offset), key: m.key?.toString() ?? null, value: m.value!.toString() });
          resolveOffset(m.offset);
        }
      },
    });
  }
}

/** True when the members' latest assignments are disjoint and cover every partition. */
function covering(members: Member[]): boolean {
  const all = members.flatMap((m) => m.assignment ?? [-1]);
  return members.every((m) => m.assignment !== null && m.assignment.length > 0) && all.length === PARTITIONS && new Set(all).size === PARTITIONS;
}

describe('kafkajs consumer group', () => {
  const topic = uniqueTopic('groups-kafkajs');
  const groupId = uniqueTopic('kafkajs-group');
  const members: Member[] = [];
  const produced: string[] = [];

  it('three consumers share 30,000 records: each consumed exactly once, offsets committed to the end', async () => {
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    produced.push(...(await produce(topic, 0, FIRST_BATCH, 'first')));
    let open = false;
    const gate = (): boolean => (open ||= covering(members));
    for (const name of ['consumer-a', 'consumer-b', 'consumer-c']) members.push(new Member(name, groupId, gate));
    await Promise.all(members.map((m) => m.start(topic)));

    const all = (): ConsumedRecord[] => members.flatMap((m) => m.consumed);
    await waitFor('30,000 records consumed', () => all().length, (n) => n >= FIRST_BATCH, 90_000, 200);
    expectConsumedExactlyOnce(all(), produced);
    const ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
    expect(ends.reduce((a, b) => a + b, 0)).toBe(FIRST_BATCH);
    expectContiguousOffsets(all(), ends);
    // Each member consumed exactly the partitions it was assigned.
    for (const m of members) expect([...new Set(m.consumed.map((r) => r.partition))].sort((a, b) => a - b)).toEqual(m.assignment);
    await waitFor('offsets committed up to the end', () => committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS), (c) => c.join() === ends.join(), 20_000);
  });

  it('admin.describeGroups, listGroups and fetchOffsets describe the running group', async () => {
    const { groups } = await admin.describeGroups([groupId]);
    expect(groups).toHaveLength(1);
    const g = groups[0]!;
    expect({ groupId: g.groupId, state: g.state, protocolType: g.protocolType, protocol: g.protocol }).toEqual({ groupId, state: 'Stable', protocolType: 'consumer', protocol: 'RoundRobinAssigner' });
    const described = g.members
      .map((m) => ({
        clientId: m.clientId,
        clientHost: m.clientHost,
        partitions: AssignerProtocol.MemberAssignment.decode(m.memberAssignment)!.assignment[topic]!.slice().sort((a, b) => a - b),
        topics: AssignerProtocol.MemberMetadata.decode(m.memberMetadata)!.topics,
      }))
      .sort((a, b) => (a.clientId < b.clientId ? -1 : 1));
    expect(described).toEqual(members.map((m) => ({ clientId: m.name, clientHost: '/127.0.0.1', partitions: m.assignment, topics: [topic] })));

    const { groups: listed } = await admin.listGroups();
    expect(listed).toEqual([{ groupId, protocolType: 'consumer' }]);

    const ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
    expect(await admin.fetchOffsets({ groupId, topics: [topic] })).toEqual([
      { topic, partitions: ends.map((offset, partition) => ({ partition, offset: String(offset), metadata: null })) },
    ]);
  });

  it('a member that leaves hands its partitions to the other two, which consume every new record exactly once', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    const leftPartitions = c.assignment!;
    const joinsBefore = [a.joins, b.joins];
    await c.consumer.disconnect();
    await waitFor('the two remaining members to share all partitions', () => [a.joins, b.joins], (j) => j[0]! > joinsBefore[0]! && j[1]! > joinsBefore[1]! && covering([a, b]), 60_000, 100);

    produced.push(...(await produce(topic, FIRST_BATCH, SECOND_BATCH, 'second')));
    const all = (): ConsumedRecord[] => members.flatMap((m) => m.consumed);
    await waitFor('every record consumed', () => all().length, (n) => n >= FIRST_BATCH + SECOND_BATCH, 60_000, 200);
    expectConsumedExactlyOnce(all(), produced);
    const ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
    expectContiguousOffsets(all(), ends);
    const second = all().filter((r) => r.value.startsWith('second-'));
    expect(second.filter((r) => r.consumer === c.name)).toEqual([]);
    // The leaver's partitions got new records, and the remaining members consumed them.
    const taken = second.filter((r) => leftPartitions.includes(r.partition));
    expect(taken.length).toBeGreaterThan(0);
    await waitFor('offsets committed up to the new end', () => committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS), (o) => o.join() === ends.join(), 20_000);
  });

  it('after the consumers stop: the group is Empty; resetOffsets, setOffsets and deleteGroups behave as against Kafka', async () => {
    const [a, b] = members as [Member, Member];
    await Promise.all([a.consumer.disconnect(), b.consumer.disconnect()]);
    const { groups } = await admin.describeGroups([groupId]);
    expect(groups.map((g) => ({ state: g.state, protocolType: g.protocolType, protocol: g.protocol, members: g.members }))).toEqual([{ state: 'Empty', protocolType: 'consumer', protocol: '', members: [] }]);

    // resetOffsets commits the "earliest" sentinel (-2) through a consumer of the group.
    await admin.resetOffsets({ groupId, topic, earliest: true });
    expect(await admin.fetchOffsets({ groupId, topics: [topic] })).toEqual([{ topic, partitions: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, offset: '-2', metadata: null })) }]);

    const ends = await endOffsets(cluster.bootstrap, topic, PARTITIONS);
    const targets = ends.map((end, partition) => ({ partition, offset: String(Math.max(0, end - 10 - partition)) }));
    await admin.setOffsets({ groupId, topic, partitions: targets });
    expect(await admin.fetchOffsets({ groupId, topics: [topic] })).toEqual([{ topic, partitions: targets.map((t) => ({ ...t, metadata: null })) }]);
    expect(await committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS)).toEqual(targets.map((t) => Number(t.offset)));

    // A consumer of the group resumes exactly from the offsets set.
    const resumed = new Member('consumer-resumed', groupId, () => true);
    await resumed.start(topic);
    const expectedTail = ends.reduce((n, end, p) => n + end - Number(targets[p]!.offset), 0);
    await waitFor('the tail after the set offsets', () => resumed.consumed.length, (n) => n >= expectedTail, 60_000, 200);
    expect(resumed.consumed.length).toBe(expectedTail);
    for (let p = 0; p < PARTITIONS; p++) {
      expect(resumed.consumed.filter((r) => r.partition === p).map((r) => r.offset)).toEqual(Array.from({ length: ends[p]! - Number(targets[p]!.offset) }, (_, i) => Number(targets[p]!.offset) + i));
    }
    await resumed.consumer.disconnect();

    expect(await admin.deleteGroups([groupId])).toEqual([{ groupId, errorCode: 0 }]);
    const { groups: after } = await admin.describeGroups([groupId]);
    expect(after.map((g) => ({ groupId: g.groupId, state: g.state, members: g.members }))).toEqual([{ groupId, state: 'Dead', members: [] }]);
    expect((await admin.listGroups()).groups).toEqual([]);
    expect(await committedOffsets(cluster.bootstrap, groupId, topic, PARTITIONS)).toEqual(Array.from({ length: PARTITIONS }, () => -1));
  });
});
