/**
 * The cluster partition count behind `--max-partitions` (`{strata}:partitions`): creations,
 * increases and deletions on two brokers change it in the same script as the topic, so
 * brokers racing for the last partitions never overshoot the limit together, and a cluster
 * from before the count (no key) starts it from its topics.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GLOBAL_KEYS } from '../../src/coordination/keys.js';
import { ErrorCode, ZERO_UUID } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';

const LIMIT = 100;

let cluster: Cluster;
let redis: Redis;
let clients: RawClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokers: 2, brokerArgs: ['--max-partitions', String(LIMIT)] });
  redis = new Redis(cluster.redis.url, { lazyConnect: true });
  await redis.connect();
  // Four connections to each broker.
  clients = await Promise.all(Array.from({ length: 8 }, (_, i) => RawClient.connect(`127.0.0.1:${cluster.brokers[i % 2]!.port}`)));
});

afterAll(async () => {
  for (const c of clients) c.close();
  redis?.disconnect();
  await cluster?.stop();
});

async function create(client: RawClient, name: string, partitions: number): Promise<number> {
  const res = await client.send(19, 7, { topics: [{ name, numPartitions: partitions, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
  return res.topics[0]!.errorCode;
}

async function remove(client: RawClient, names: string[]): Promise<number[]> {
  const res = await client.send(20, 6, { topics: names.map((name) => ({ name, topicId: ZERO_UUID })), topicNames: [], timeoutMs: 5000 });
  return res.responses.map((r) => r.errorCode);
}

/** Every topic and its partition count, read from Redis (not a broker's cache). */
async function storedTopics(): Promise<Record<string, number>> {
  const names = await redis.hgetall(GLOBAL_KEYS.topics);
  const out: Record<string, number> = {};
  for (const [name, id] of Object.entries(names)) out[name] = Number(await redis.hget(GLOBAL_KEYS.topic(id), 'partitions'));
  return out;
}

const sum = (counts: Record<string, number>): number => Object.values(counts).reduce((a, b) => a + b, 0);

async function storedCount(): Promise<number | null> {
  const v = await redis.get(GLOBAL_KEYS.partitionCount);
  return v === null ? null : Number(v);
}

describe('cluster partition count', () => {
  it('lets exactly the creations that fit through when two brokers race for the last partitions', async () => {
    // 24 creations of 10 partitions each, on eight connections over both brokers, at once.
    const codes = await Promise.all(Array.from({ length: 24 }, (_, i) => create(clients[i % clients.length]!, `race-${i}`, 10)));
    expect(codes.filter((c) => c === ErrorCode.NONE)).toHaveLength(10);
    expect(codes.filter((c) => c === ErrorCode.POLICY_VIOLATION)).toHaveLength(14);
    const topics = await storedTopics();
    expect(Object.keys(topics)).toHaveLength(10);
    expect(sum(topics)).toBe(LIMIT);
    expect(await storedCount()).toBe(LIMIT);
  });

  it('gives a deleted topic\'s partitions (as raised meanwhile) back, once', async () => {
    const names = Object.keys(await storedTopics()).sort();
    // Delete three topics, one of them named by two concurrent requests (on two brokers): its
    // partitions are given back once, whichever request removes it.
    const [first, second] = await Promise.all([remove(clients[0]!, [names[0]!, names[1]!]), remove(clients[1]!, [names[1]!, names[2]!])]);
    for (const c of [...first!, ...second!]) expect([ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]).toContain(c);
    expect(Object.keys(await storedTopics())).toHaveLength(7);
    expect(await storedCount()).toBe(LIMIT - 30);
    // An increase is counted, and so is the deletion of the raised topic.
    const raised = await clients[2]!.send(37, 3, { topics: [{ name: names[3]!, count: 25, assignments: null }], timeoutMs: 5000, validateOnly: false });
    expect(raised.results[0]!.errorCode).toBe(ErrorCode.NONE);
    expect(await storedCount()).toBe(LIMIT - 15);
    expect(await remove(clients[3]!, [names[3]!])).toEqual([ErrorCode.NONE]);
    expect(await storedCount()).toBe(LIMIT - 40);
    expect(sum(await storedTopics())).toBe(LIMIT - 40);
  });

  it('lets exactly the increases that fit through when they race with creations', async () => {
    const names = Object.keys(await storedTopics()).sort();
    // 60 partitions are stored; 40 are free. Six increases of 10 and six creations of 5 race
    // for them: whatever wins, the cluster ends at most at the limit and the count is exact.
    const increases = names.slice(0, 6).map((name, i) => clients[i % clients.length]!.send(37, 3, { topics: [{ name, count: 20, assignments: null }], timeoutMs: 5000, validateOnly: false }).then((r) => r.results[0]!.errorCode));
    const creations = Array.from({ length: 6 }, (_, i) => create(clients[(i + 3) % clients.length]!, `late-${i}`, 5));
    const increaseCodes = await Promise.all(increases);
    const creationCodes = await Promise.all(creations);
    for (const c of [...increaseCodes, ...creationCodes]) expect([ErrorCode.NONE, ErrorCode.POLICY_VIOLATION]).toContain(c);
    const granted = increaseCodes.filter((c) => c === ErrorCode.NONE).length * 10 + creationCodes.filter((c) => c === ErrorCode.NONE).length * 5;
    expect(granted).toBeLessThanOrEqual(40);
    // Every refusal was for lack of room: what was free then, and is granted by now, was less
    // than the refused request.
    if (creationCodes.includes(ErrorCode.POLICY_VIOLATION)) expect(granted).toBeGreaterThan(35);
    if (increaseCodes.includes(ErrorCode.POLICY_VIOLATION)) expect(granted).toBeGreaterThan(30);
    const topics = await storedTopics();
    expect(sum(topics)).toBe(60 + granted);
    expect(await storedCount()).toBe(60 + granted);
  });

  it('starts a missing count from the topics (a cluster from before the count), and deletions leave it missing', async () => {
    const before = await storedTopics();
    const total = sum(before);
    await redis.del(GLOBAL_KEYS.partitionCount);
    // A deletion while the count is missing does not start it.
    const victim = Object.keys(before).sort()[0]!;
    expect(await remove(clients[0]!, [victim])).toEqual([ErrorCode.NONE]);
    expect(await storedCount()).toBeNull();
    const left = total - before[victim]!;
    // The next creation counts the topics, then checks: a topic one partition too large is
    // refused with the count of what is stored, and the count is now kept.
    const room = LIMIT - left;
    const over = await clients[1]!.send(19, 7, { topics: [{ name: 'after-upgrade', numPartitions: room + 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 5000, validateOnly: false });
    expect(over.topics[0]!.errorCode).toBe(ErrorCode.POLICY_VIOLATION);
    expect(over.topics[0]!.errorMessage).toBe(`topic "after-upgrade" would bring the cluster from ${left} to ${LIMIT + 1} partitions, over the limit of ${LIMIT}; delete topics or raise --max-partitions`);
    expect(await storedCount()).toBe(left);
    expect(await create(clients[2]!, 'after-upgrade', room)).toBe(ErrorCode.NONE);
    expect(await storedCount()).toBe(LIMIT);
    expect(sum(await storedTopics())).toBe(LIMIT);
  });
});
