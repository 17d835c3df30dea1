/**
 * Zombie fencing: two producers with one transactional id. The newer InitProducerId bumps the
 * epoch and aborts the older instance's open transaction; every later request of the older
 * instance is refused (INVALID_PRODUCER_EPOCH on Produce, PRODUCER_FENCED or
 * INVALID_PRODUCER_EPOCH on the coordinator's APIs, depending on the version), and none of its
 * writes — before or after the fence — is ever visible read_committed. Driven over RawClient
 * (exact requests, and a zombie writing concurrently with the takeover), with kafkajs, and
 * with confluent-kafka-python (librdkafka).
 */
import path from 'node:path';
import kafkajs, { type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { runClient, uniqueTopic } from '../helpers/compat.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { RawTxnProducer, fetchOnce, readPartition } from '../helpers/raw-txn.js';
import { createTopic } from '../helpers/topics.js';

const { Kafka, logLevel } = kafkajs;

let cluster: Cluster;
let c: RawClient;
const producers: Producer[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
  c = await RawClient.connect(cluster.bootstrap, 'fencing-test');
});

afterAll(async () => {
  await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
  c?.close();
  await cluster?.stop();
});

/** Every error type and message in a kafkajs error and its causes. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  const walk = (e: unknown, depth: number): void => {
    if (!e || typeof e !== 'object' || depth > 5) return;
    const x = e as { type?: string; message?: string; cause?: unknown; originalError?: unknown; errors?: unknown[] };
    parts.push(`${x.type ?? ''} ${x.message ?? ''}`);
    walk(x.cause, depth + 1);
    walk(x.originalError, depth + 1);
    for (const inner of x.errors ?? []) walk(inner, depth + 1);
  };
  walk(err, 0);
  return parts.join(' | ');
}

describe('zombie fencing', () => {
  it('RawClient: the older instance is refused everywhere and nothing it wrote becomes visible', async () => {
    const topic = uniqueTopic('fence-raw');
    await createTopic(cluster.bootstrap, topic, 2);
    const zombie = new RawTxnProducer(c, `${topic}-tx`);
    await zombie.initOk(30_000);
    await zombie.addPartitionsOk(topic, [0, 1]);
    await zombie.produceOk(topic, 0, ['zombie-0']);
    await zombie.produceOk(topic, 1, ['zombie-1']);

    const current = new RawTxnProducer(c, `${topic}-tx`);
    await current.initOk(30_000);
    expect([current.producerId, current.producerEpoch]).toEqual([zombie.producerId, zombie.producerEpoch + 1]);

    expect(await zombie.produce(topic, 0, ['zombie-after-0'])).toEqual({ errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, baseOffset: -1 });
    expect(await zombie.produce(topic, 1, ['zombie-after-1'])).toEqual({ errorCode: ErrorCode.INVALID_PRODUCER_EPOCH, baseOffset: -1 });
    expect(await zombie.addPartitions(topic, [0])).toEqual([ErrorCode.PRODUCER_FENCED]);
    expect(await zombie.addOffsets(`${topic}-group`)).toBe(ErrorCode.PRODUCER_FENCED);
    expect(await zombie.endTxn(true)).toBe(ErrorCode.PRODUCER_FENCED);
    expect(await zombie.endTxn(true, 1)).toBe(ErrorCode.INVALID_PRODUCER_EPOCH);
    await current.addPartitionsOk(topic, [0]);
    await current.produceOk(topic, 0, ['current-0']);
    expect(await current.endTxn(true)).toBe(ErrorCode.NONE);

    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['current-0']);
    expect(await readPartition(c, topic, 1, true)).toEqual([]);
    // read_uncommitted: the zombie's records before the fence exist, aborted; none after it.
    expect((await readPartition(c, topic, 0, false)).map((r) => r.value)).toEqual(['zombie-0', 'current-0']);
    expect((await fetchOnce(c, topic, 1, 0, false)).markers).toEqual([{ offset: 1, producerId: current.producerId, abort: true }]);
  });

  it('RawClient: a zombie writing while the new instance takes over gets nothing past the fence', async () => {
    const topic = uniqueTopic('fence-race');
    await createTopic(cluster.bootstrap, topic, 2);
    const zc = await RawClient.connect(cluster.bootstrap, 'zombie');
    try {
      const zombie = new RawTxnProducer(zc, `${topic}-tx`);
      await zombie.initOk(30_000);
      await zombie.addPartitionsOk(topic, [0, 1]);
      const fencedOn = new Set<number>();
      const accepted: string[] = [];
      const refusals = new Set<number>();
      // The zombie writes to both partitions until each has refused it.
      const writing = (async () => {
        for (let i = 0; fencedOn.size < 2 && i < 10_000; i++) {
          const partition = i % 2;
          if (fencedOn.has(partition)) continue;
          const value = `zombie-${partition}-${i}`;
          const r = await zombie.produce(topic, partition, [value]);
          if (r.errorCode === ErrorCode.NONE) accepted.push(value);
          else {
            refusals.add(r.errorCode);
            fencedOn.add(partition);
          }
        }
      })();
      // Take over once the zombie is writing (bounded wait, no timing assumption).
      for (let waited = 0; accepted.length < 4; waited += 10) {
        if (waited > 20_000) throw new Error('the zombie never got a write in');
        await new Promise((r) => setTimeout(r, 10));
      }
      const current = new RawTxnProducer(c, `${topic}-tx`);
      await current.initOk(30_000);
      await writing;
      expect(fencedOn).toEqual(new Set([0, 1]));
      expect([...refusals]).toEqual([ErrorCode.INVALID_PRODUCER_EPOCH]);

      await current.addPartitionsOk(topic, [0, 1]);
      await current.produceOk(topic, 0, ['current-0']);
      await current.produceOk(topic, 1, ['current-1']);
      expect(await current.endTxn(true)).toBe(ErrorCode.NONE);
      for (const p of [0, 1]) {
        expect((await readPartition(c, topic, p, true)).map((r) => r.value)).toEqual([`current-${p}`]);
        // Every zombie batch lies before the abort marker the takeover wrote.
        const all = await fetchOnce(c, topic, p, 0, false);
        const abortAt = all.markers.find((m) => m.abort)!.offset;
        expect(all.records.filter((r) => r.value.startsWith('zombie') && r.offset > abortAt)).toEqual([]);
        expect(all.records.filter((r) => r.value.startsWith('zombie')).map((r) => r.value).sort()).toEqual(accepted.filter((v) => v.startsWith(`zombie-${p}-`)).sort());
      }
    } finally {
      zc.close();
    }
  });

  it('kafkajs: the older producer’s send and commit fail as fenced; only the newer one’s records are visible', async () => {
    const topic = uniqueTopic('fence-kafkajs');
    await createTopic(cluster.bootstrap, topic, 2);
    const kafka = new Kafka({ clientId: 'fencing-kafkajs', brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } });
    const connect = async (): Promise<Producer> => {
      const p = kafka.producer({ transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      producers.push(p);
      await p.connect();
      return p;
    };
    const older = await connect();
    const newer = await connect();
    const olderTxn = await older.transaction();
    await olderTxn.send({ topic, messages: [{ partition: 0, value: 'older-before' }] });
    const newerTxn = await newer.transaction();

    const sendError = await olderTxn.send({ topic, messages: [{ partition: 0, value: 'older-after-0' }, { partition: 1, value: 'older-after-1' }] }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(errorText(sendError)).toMatch(/INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/);
    const commitError = await olderTxn.commit().then(
      () => null,
      (e: unknown) => e,
    );
    expect(errorText(commitError)).toMatch(/INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/);

    await newerTxn.send({ topic, messages: [{ partition: 0, value: 'newer-0' }, { partition: 1, value: 'newer-1' }] });
    await newerTxn.commit();
    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['newer-0']);
    expect((await readPartition(c, topic, 1, true)).map((r) => r.value)).toEqual(['newer-1']);
    expect((await readPartition(c, topic, 0, false)).map((r) => r.value)).toEqual(['older-before', 'newer-0']);
  });

  it('confluent-kafka-python: the zombie gets a fatal fencing error; only the current producer’s records are visible', async () => {
    const topic = uniqueTopic('fence-python');
    await createTopic(cluster.bootstrap, topic, 1);
    const script = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'txn-fencing.py');
    const env = { ...process.env };
    delete env.PYTHONPATH;
    delete env.PYTHONHOME;
    const { stdout } = await runClient('/usr/bin/python3', [script, JSON.stringify({ bootstrap: cluster.bootstrap, topic, transactionalId: `${topic}-tx` })], { env, timeoutMs: 90_000 });
    const result = JSON.parse(stdout) as { zombieError: { name: string; fatal: boolean } | null; deliveryErrors: string[]; currentCommitted: boolean };
    expect(result.zombieError).not.toBeNull();
    expect(result.zombieError!.fatal).toBe(true);
    expect(result.zombieError!.name).toMatch(/FENCED|INVALID_PRODUCER_EPOCH/);
    expect(result.currentCommitted).toBe(true);
    expect((await readPartition(c, topic, 0, true)).map((r) => r.value)).toEqual(['current-0', 'current-1']);
    expect((await readPartition(c, topic, 0, false)).map((r) => r.value).filter((v) => v === 'zombie-after')).toEqual([]);
  });
});
