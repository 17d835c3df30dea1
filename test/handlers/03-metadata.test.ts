/**
 * Metadata (key 3): topic names Kafka refuses are answered INVALID_TOPIC_EXCEPTION on an open
 * connection (the topic "" used to throw in the handler and close it), auto-creation keeps to
 * the partition limits, and the shared per-topic partition lists follow partition increases
 * and broker changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rendezvousOrder } from '../../src/cluster/routing.js';
import { ErrorCode, ZERO_UUID, type MetadataRequest, type MetadataResponseTopic } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

let cluster: Cluster;
let client: RawClient;

/** Room for 12 partitions in the cluster; auto-created topics get 4. */
const MAX_PARTITIONS = 12;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--max-partitions', String(MAX_PARTITIONS), '--num-partitions', '4', '--default-replication-factor', '1'] });
  client = await RawClient.connect(cluster.bootstrap);
});

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function named(names: (string | null)[], allowAutoTopicCreation = false, topicId = ZERO_UUID): MetadataRequest {
  return { topics: names.map((name) => ({ topicId, name })), allowAutoTopicCreation, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false };
}

/** The (name, error, partition count) of each answered topic. */
function summary(topics: readonly MetadataResponseTopic[]): [string | null, number, number][] {
  return topics.map((t) => [t.name, t.errorCode, t.partitions.length]);
}

describe('Metadata topic names', () => {
  it('answers the topic "" with INVALID_TOPIC_EXCEPTION and keeps serving the connection (v12, v9, v1)', async () => {
    await createTopic(client, 'names-ok', 1);
    for (const v of [12, 9, 1]) {
      // Before v4 the request has no flag: the broker auto-creates when it is configured to.
      const res = await client.send(3, v, named(['', 'names-ok'], v < 4));
      expect(summary(res.topics), `v${v}`).toEqual([
        ['', ErrorCode.INVALID_TOPIC_EXCEPTION, 0],
        ['names-ok', ErrorCode.NONE, 1],
      ]);
      expect(client.closed).toBe(false);
    }
    // A second request on the same connection is answered.
    const again = await client.send(3, 12, named(['names-ok']));
    expect(summary(again.topics)).toEqual([['names-ok', ErrorCode.NONE, 1]]);
  });

  it('answers every name Kafka refuses with INVALID_TOPIC_EXCEPTION, with auto-creation on or off, and creates none of them', async () => {
    const bad = ['.', '..', 'a'.repeat(250), 'has space', 'slash/name', 'ünicode', 'colon:name'];
    for (const auto of [false, true]) {
      const res = await client.send(3, 12, named(bad, auto));
      expect(summary(res.topics), `allowAutoTopicCreation ${auto}`).toEqual(bad.map((n) => [n, ErrorCode.INVALID_TOPIC_EXCEPTION, 0]));
    }
    // v0–v3 auto-create whenever the broker allows it: the same answer.
    const v1 = await client.send(3, 1, named(['', '..'], true));
    expect(summary(v1.topics)).toEqual([['', ErrorCode.INVALID_TOPIC_EXCEPTION, 0], ['..', ErrorCode.INVALID_TOPIC_EXCEPTION, 0]]);
    const all = await client.send(3, 12, { ...named([]), topics: null });
    expect(all.topics.map((t) => t.name)).toEqual(['names-ok']);
  });

  it('accepts the longest legal name (249 characters) and every legal character', async () => {
    const longest = 'b'.repeat(249);
    const chars = 'Az09._-';
    const res = await client.send(3, 12, named([longest, chars]));
    expect(summary(res.topics)).toEqual([
      [longest, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0],
      [chars, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0],
    ]);
  });

  it('answers a null name without a topic id with INVALID_REQUEST in v10 and UNKNOWN_TOPIC_ID in v12, on an open connection', async () => {
    const v10 = await client.send(3, 10, named([null]));
    expect(summary(v10.topics)).toEqual([['', ErrorCode.INVALID_REQUEST, 0]]);
    const v12 = await client.send(3, 12, named([null]));
    expect(summary(v12.topics)).toEqual([[null, ErrorCode.UNKNOWN_TOPIC_ID, 0]]);
    // An unknown id in v10 (which Kafka refuses outright) is answered, not a closed connection.
    const unknownId = await client.send(3, 10, named([null], false, 'AAAAAAAAAAAAAAAAAAAAAQ'));
    expect(unknownId.topics.map((t) => [t.name, t.topicId, t.errorCode])).toEqual([['', 'AAAAAAAAAAAAAAAAAAAAAQ', ErrorCode.UNKNOWN_TOPIC_ID]]);
    expect(client.closed).toBe(false);
  });
});

describe('Metadata auto-creation and the partition limits', () => {
  it('auto-creates while the cluster has room, then answers POLICY_VIOLATION and creates nothing', async () => {
    // The cluster holds names-ok (1 partition); each auto-created topic takes 4, the limit is 12.
    const first = await client.send(3, 12, named(['auto-1', 'auto-2', 'auto-3'], true));
    expect(summary(first.topics)).toEqual([
      ['auto-1', ErrorCode.NONE, 4],
      ['auto-2', ErrorCode.NONE, 4],
      ['auto-3', ErrorCode.POLICY_VIOLATION, 0],
    ]);
    const lookedUp = await client.send(3, 12, named(['auto-3']));
    expect(summary(lookedUp.topics)).toEqual([['auto-3', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 0]]);
    // Deleting a topic makes room again.
    const deleted = await client.send(20, 6, { topics: [{ name: 'auto-1', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 5000 });
    expect(deleted.responses[0]!.errorCode).toBe(ErrorCode.NONE);
    const retried = await client.send(3, 12, named(['auto-3'], true));
    expect(summary(retried.topics)).toEqual([['auto-3', ErrorCode.NONE, 4]]);
  });
});

describe('Metadata partition lists', () => {
  it('follow a partition increase and a broker joining, leader hints as rendezvous ordering gives them', async () => {
    await createTopic(client, 'lists', 2);
    const before = await client.send(3, 12, named(['lists']));
    expect(before.topics[0]!.partitions.map((p) => p.partitionIndex)).toEqual([0, 1]);
    const raised = await client.send(37, 3, { topics: [{ name: 'lists', count: 3, assignments: null }], timeoutMs: 5000, validateOnly: false });
    expect(raised.results[0]!.errorCode).toBe(ErrorCode.NONE);
    const after = await client.send(3, 12, named(['lists']));
    expect(after.topics[0]!.partitions.map((p) => p.partitionIndex)).toEqual([0, 1, 2]);

    const second = await cluster.addBroker();
    const topicId = after.topics[0]!.topicId;
    // The first broker sees the second at its next registry refresh (bounded wait).
    const meta = await waitFor('the second broker in Metadata', () => client.send(3, 12, named(['lists'])), (m) => m.brokers.length >= 2, 20_000, 100);
    const nodeIds = meta.brokers.map((b) => b.nodeId).sort((a, b) => a - b);
    expect(nodeIds).toEqual([cluster.brokers[0]!.broker!.nodeId, second.broker!.nodeId].sort((a, b) => a - b));
    const expected = [0, 1, 2].map((p) => rendezvousOrder(topicId, p, nodeIds)[0]);
    expect(meta.topics[0]!.partitions.map((p) => [p.partitionIndex, p.leaderId, p.replicaNodes])).toEqual(expected.map((leader, p) => [p, leader, [leader]]));
  });
});
