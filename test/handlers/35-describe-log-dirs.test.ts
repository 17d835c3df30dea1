/**
 * DescribeLogDirs (key 35): one pseudo log directory per broker, listing the partitions the
 * broker is a replica of (as Metadata shows them) with their stored bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { encodeBatchSync } from '../../wire/records/index.js';
import { PSEUDO_LOG_DIR } from '../../src/handlers/35-describe-log-dirs.js';
import { WireClient, createTopic } from '../../src/harness/wire-client.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

const PARTITIONS = 6;
let cluster: Cluster;
let clients: WireClient[];
/** Stored bytes per partition: one batch each, of a size that differs per partition. */
const sizes: number[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokers: 2 });
  clients = await Promise.all(cluster.brokers.map((b) => WireClient.connect(`127.0.0.1:${b.port}`, 'log-dirs-test')));
  const c = clients[0]!;
  await createTopic(c, 'sized', PARTITIONS, {});
  await createTopic(c, 'empty', 1, {});
  await waitFor('both brokers in Metadata', async () => {
    const m = await c.send(3, 9, { topics: [], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    return m.brokers.length === 2 ? true : undefined;
  });
  const partitionData = Array.from({ length: PARTITIONS }, (_, index) => {
    const records = encodeBatchSync(Array.from({ length: index + 1 }, (_, r) => ({ key: Buffer.from(`k${r}`), value: Buffer.from('x'.repeat(10 * (index + 1))), timestamp: Date.now() })), {});
    sizes.push(records.length);
    return { index, records };
  });
  const res = await c.send(0, 9, { transactionalId: null, acks: -1, timeoutMs: 10_000, topicData: [{ name: 'sized', partitionData }] });
  expect(res.responses[0]!.partitionResponses.map((p) => p.errorCode)).toEqual(new Array(PARTITIONS).fill(ErrorCode.NONE));
});

afterAll(async () => {
  for (const c of clients ?? []) c.close();
  await cluster?.stop();
});

/** partition → [size, offsetLag, isFutureKey] of `topic` in one broker's answer. */
async function describeOn(c: WireClient, version: number, topics: { topic: string; partitions: number[] }[] | null) {
  const res = await c.send(35, version, { topics });
  expect(res.errorCode).toBe(ErrorCode.NONE);
  expect(res.results).toHaveLength(1);
  const dir = res.results[0]!;
  expect(dir.errorCode).toBe(ErrorCode.NONE);
  expect(dir.logDir).toBe(PSEUDO_LOG_DIR);
  if (version >= 4) expect([dir.totalBytes, dir.usableBytes]).toEqual([-1n, -1n]);
  return new Map(dir.topics.map((t) => [t.name, new Map(t.partitions.map((p) => [p.partitionIndex, [Number(p.partitionSize), Number(p.offsetLag), p.isFutureKey]]))]));
}

describe('DescribeLogDirs', () => {
  it('splits the partitions between the brokers as Metadata leads them, each with its stored bytes (v1 and v4)', async () => {
    const meta = await clients[0]!.send(3, 9, { topics: [{ topicId: '', name: 'sized' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
    const leaderOf = new Map(meta.topics[0]!.partitions.map((p) => [p.partitionIndex, p.leaderId]));
    const nodeOf = new Map(meta.brokers.map((b) => [b.port, b.nodeId]));
    for (const version of [1, 4]) {
      const seen = new Map<number, number[]>();
      for (const [i, c] of clients.entries()) {
        const node = nodeOf.get(cluster.brokers[i]!.port)!;
        const answer = await describeOn(c, version, [{ topic: 'sized', partitions: [0, 1, 2, 3, 4, 5, 9] }, { topic: 'missing', partitions: [0] }]);
        expect([...answer.keys()].filter((t) => t !== 'sized')).toEqual([]);
        for (const [p, entry] of answer.get('sized') ?? new Map<number, (number | boolean)[]>()) {
          // Replication factor 1 (startCluster's topics): each partition's one replica is its leader.
          expect(leaderOf.get(p)).toBe(node);
          expect(entry).toEqual([sizes[p], 0, false]);
          seen.set(p, [...(seen.get(p) ?? []), node]);
        }
      }
      // Every existing partition once; partition 9 and topic "missing" left out.
      expect([...seen.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5]);
      expect([...seen.values()].every((nodes) => nodes.length === 1)).toBe(true);
    }
  });

  it('describes every topic when topics is null, empty partitions as 0 bytes', async () => {
    const union = new Map<string, Map<number, unknown>>();
    for (const c of clients) {
      for (const [topic, parts] of await describeOn(c, 4, null)) union.set(topic, new Map([...(union.get(topic) ?? []), ...parts]));
    }
    expect([...union.keys()].sort()).toEqual(['empty', 'sized']);
    expect(union.get('empty')).toEqual(new Map([[0, [0, 0, false]]]));
    expect([...union.get('sized')!.values()]).toHaveLength(PARTITIONS);
  });
});
