/**
 * `strata groups describe|list`: members, assignments, committed offsets, high watermarks and
 * lag, read from a live cluster through the Kafka protocol.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { runGroups } from '../../src/commands/groups.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { waitFor } from '../helpers/wait.js';

let cluster: Cluster;
let consumer: Consumer | null = null;

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--group-initial-rebalance-delay-ms', '0'] });
});

afterAll(async () => {
  await consumer?.disconnect();
  await cluster?.stop();
});

async function run(args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runGroups([...args, '--bootstrap', cluster.bootstrap], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

describe('strata groups', () => {
  it('shows committed offsets, high watermarks, lag and the owning member per partition', async () => {
    const kafka = new Kafka({ brokers: [cluster.bootstrap], clientId: 'lag-test', logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'lag-topic', numPartitions: 2 }] });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'lag-topic', messages: [0, 0, 0, 1].map((p, i) => ({ partition: p, value: `v${i}` })) });
    await producer.disconnect();
    // Committed: partition 0 at 1 (lag 2), partition 1 at 1 (lag 0).
    await admin.setOffsets({ groupId: 'lag-group', topic: 'lag-topic', partitions: [{ partition: 0, offset: '1' }, { partition: 1, offset: '1' }] });
    await admin.disconnect();

    const d = await run(['describe', 'lag-group', '--json']);
    expect(d.code).toBe(0);
    const parsed = JSON.parse(d.out[0]!) as { state: string; members: unknown[]; lags: unknown[] };
    expect(parsed.state).toBe('Empty');
    expect(parsed.members).toEqual([]);
    expect(parsed.lags).toEqual([
      { topic: 'lag-topic', partition: 0, memberId: null, committed: 1, hw: 3, lag: 2 },
      { topic: 'lag-topic', partition: 1, memberId: null, committed: 1, hw: 1, lag: 0 },
    ]);

    // With a live member, each partition names it.
    consumer = kafka.consumer({ groupId: 'lag-group', sessionTimeout: 10000 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'lag-topic' });
    let assigned = false;
    consumer.on(consumer.events.GROUP_JOIN, () => (assigned = true));
    await consumer.run({ eachMessage: async () => undefined });
    await waitFor('the consumer to join lag-group', () => (assigned ? true : undefined), 30_000, 100);
    const live = await run(['describe', 'lag-group', '--json']);
    const withMember = JSON.parse(live.out[0]!) as { state: string; members: { memberId: string; clientId: string }[]; lags: { memberId: string | null }[] };
    expect(withMember.state).toBe('Stable');
    expect(withMember.members).toHaveLength(1);
    expect(withMember.members[0]!.clientId).toBe('lag-test');
    expect(withMember.lags.map((l) => l.memberId)).toEqual([withMember.members[0]!.memberId, withMember.members[0]!.memberId]);

    const table = await run(['describe', 'lag-group']);
    expect(table.out[0]).toBe('group lag-group: Stable (RoundRobinAssigner), 1 member(s)');
    expect(table.out[1]!.split(/\s+/)).toEqual(['TOPIC', 'PARTITION', 'COMMITTED', 'HIGH-WATERMARK', 'LAG', 'MEMBER', 'CLIENT', 'HOST']);

    const list = await run(['list', '--json']);
    expect(JSON.parse(list.out[0]!)).toEqual([{ groupId: 'lag-group', state: 'Stable', protocolType: 'consumer' }]);
  });

  it('explains usage and unreachable brokers in one line', async () => {
    const usage = await runGroups(['describe'], { out: () => undefined, err: () => undefined });
    expect(usage).toBe(2);
    const err: string[] = [];
    const code = await runGroups(['list', '--bootstrap', '127.0.0.1:1'], { out: () => undefined, err: (l) => err.push(l) });
    expect(code).toBe(1);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^strata groups: could not connect to 127\.0\.0\.1:1/);
  });
});
