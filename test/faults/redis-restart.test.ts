/**
 * Redis restarts under load (docs/architecture.md §3.2, §5, §12): Redis runs with AOF and
 * `appendfsync always`, two in-process brokers on the file store. Producers keep producing
 * through a restart (clean, then SIGKILL); afterwards every acknowledged record is stored,
 * each partition's offsets run from 0 without a gap or a repeat (no offset assigned twice),
 * and the brokers serve again on their own. While Redis is down, requests get retriable
 * Kafka errors and connections stay open.
 */
import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode, errorInfo } from '../../wire/index.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import type { StopSignal } from '../helpers/redis.js';
import { RawClient } from '../helpers/raw-client.js';
import { readAll, type ReadRecord } from '../helpers/read-all.js';
import { ZERO_UUID, batch, expectAcknowledgedStored, fetchBody, produceBody } from '../helpers/faults.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

const RUN = randomBytes(4).toString('hex');
const PARTITIONS = 4;

let cluster: Cluster;
let idempotent = false;

beforeAll(async () => {
  cluster = await startCluster({ brokers: 2 });
  const c = await RawClient.connect(cluster.bootstrap, 'redis-restart-probe');
  try {
    const versions = await c.send(18, 3, { clientSoftwareName: 'redis-restart', clientSoftwareVersion: '1' });
    idempotent = versions.apiKeys.some((k) => k.apiKey === ApiKey.InitProducerId);
  } finally {
    c.close();
  }
});

afterAll(async () => {
  await cluster?.stop();
});

/** Produces one record through each broker until both answer NONE (bounded). */
async function expectBrokersServe(topic: string): Promise<void> {
  for (const b of cluster.brokers) {
    await waitFor(`broker on port ${b.port} to accept produce again`, async () => {
      const c = await RawClient.connect(`127.0.0.1:${b.port}`, 'redis-restart-check');
      try {
        const res = await c.send(0, 9, produceBody(topic, [{ partition: 0, records: batch([`after-restart-${b.port}`]) }]));
        return res.responses[0]!.partitionResponses[0]!.errorCode === ErrorCode.NONE ? true : undefined;
      } finally {
        c.close();
      }
    }, 30_000, 200);
  }
}

function valuesByPartition(stored: readonly ReadRecord[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const r of stored) out.set(r.partition, [...(out.get(r.partition) ?? []), r.value ?? '']);
  return out;
}

describe.each<StopSignal>(['SIGTERM', 'SIGKILL'])('Redis restarted with %s during produce', (signal) => {
  it('keeps every acknowledged record, assigns no offset twice, and the brokers recover by themselves', { timeout: 120_000 }, async () => {
    const SENDS = 200;
    const PER_SEND = 5;
    /** Producing loops; each owns PARTITIONS / WORKERS partitions (see broker-kill.test.ts). */
    const WORKERS = 2;
    const RESTART_AFTER_SENDS = 50;
    const topic = `redis-restart-${signal.toLowerCase()}-${RUN}`;
    const admin = await RawClient.connect(cluster.bootstrap, 'redis-restart-admin');
    try {
      await createTopic(admin, topic, PARTITIONS);
    } finally {
      admin.close();
    }

    const kafka = new Kafka({
      clientId: 'redis-restart',
      brokers: cluster.brokers.map((b) => `127.0.0.1:${b.port}`),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2000,
      requestTimeout: 10_000,
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      idempotent,
      ...(idempotent ? { maxInFlightRequests: 1 } : {}),
      retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const sent = new Set<string>();
    const sentOrder = new Map<number, string[]>();
    const acknowledged = new Set<string>();
    const failures: string[] = [];
    let acknowledgedSends = 0;
    let sendsAtRestart: number;
    try {
      await producer.connect();
      let next = 0;
      const worker = async (w: number): Promise<void> => {
        for (let k = 0; next < SENDS; k++) {
          const n = next++;
          const partition = w + WORKERS * (k % (PARTITIONS / WORKERS));
          const messages = Array.from({ length: PER_SEND }, (_, i) => ({ partition, value: `${signal}-${n}-${i}` }));
          for (const m of messages) sent.add(m.value);
          sentOrder.set(partition, [...(sentOrder.get(partition) ?? []), ...messages.map((m) => m.value)]);
          try {
            await producer.send({ topic, acks: -1, messages });
            for (const m of messages) acknowledged.add(m.value);
            acknowledgedSends++;
          } catch (err) {
            failures.push(`send ${n}: ${(err as Error).message}`);
          }
        }
      };
      const workers = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
      await waitFor('the first sends to be acknowledged', () => (acknowledgedSends >= RESTART_AFTER_SENDS || failures.length > 0 ? true : undefined), 60_000);
      // The helper's restart() in two steps, so that the outage is observed while it lasts:
      // nothing is acknowledged without Redis.
      await cluster.redis.kill(signal);
      sendsAtRestart = acknowledgedSends;
      try {
        const probe = await RawClient.connect(cluster.bootstrap, 'redis-restart-probe');
        try {
          const res = await probe.send(0, 9, produceBody(topic, [{ partition: 0, records: batch(['during-outage']) }]));
          expect(res.responses[0]!.partitionResponses[0]!.errorCode).not.toBe(ErrorCode.NONE);
        } catch (err) {
          // A closed connection is not an acknowledgement either (see 'while Redis is down').
          expect(probe.closed, (err as Error).message).toBe(true);
        } finally {
          probe.close();
        }
      } finally {
        await cluster.redis.start();
      }
      await workers;
    } finally {
      await producer.disconnect().catch(() => undefined);
    }
    expect(sendsAtRestart).toBeLessThan(SENDS);
    expect(failures).toEqual([]);
    expect(acknowledged.size).toBe(SENDS * PER_SEND);
    const stored = await readAll(cluster.bootstrap, topic);
    expectAcknowledgedStored(stored, acknowledged, sent, { exactlyOnce: idempotent });
    if (idempotent) expect(valuesByPartition(stored)).toEqual(sentOrder);
    await expectBrokersServe(topic);
  });
});

describe('while Redis is down', () => {
  // Each request on a fresh connection, so that every outcome is observed even when one
  // closes its connection; the outcome names the Kafka error, or "connection closed".
  it('answers with retriable errors instead of closing connections, and serves again once Redis is back', { timeout: 90_000 }, async () => {
    const known = `redis-down-known-${RUN}`;
    const unknown = `redis-down-never-created-${RUN}`;
    const admin = await RawClient.connect(cluster.bootstrap, 'redis-down-admin');
    try {
      await createTopic(admin, known, 1);
      const first = await admin.send(0, 9, produceBody(known, [{ partition: 0, records: batch(['before']) }]));
      expect(first.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.NONE, baseOffset: 0n });
    } finally {
      admin.close();
    }
    const outcomes: Record<string, string> = {};
    const attempt = async (what: string, request: (c: RawClient) => Promise<number>): Promise<void> => {
      const c = await RawClient.connect(cluster.bootstrap, 'redis-down');
      try {
        const code = await request(c);
        outcomes[what] = errorInfo(code)?.name ?? `error ${code}`;
      } catch (err) {
        outcomes[what] = c.closed ? 'connection closed' : (err as Error).message;
      } finally {
        c.close();
      }
    };

    await cluster.redis.kill('SIGKILL');
    try {
      // A topic the broker knows: the upload succeeds, the commit cannot; nothing is acknowledged.
      await attempt('produce, known topic', async (c) => (await c.send(0, 9, produceBody(known, [{ partition: 0, records: batch(['not acknowledged']) }]))).responses[0]!.partitionResponses[0]!.errorCode);
      await attempt('fetch, known topic', async (c) => (await c.send(1, 11, fetchBody(known, [{ partition: 0, fetchOffset: 0 }]))).responses[0]!.partitions[0]!.errorCode);
      // A topic the broker has never seen needs a Redis read to be resolved.
      await attempt('produce, unknown topic', async (c) => (await c.send(0, 9, produceBody(unknown, [{ partition: 0, records: batch(['lost']) }]))).responses[0]!.partitionResponses[0]!.errorCode);
      await attempt('fetch, unknown topic', async (c) => (await c.send(1, 11, fetchBody(unknown, [{ partition: 0, fetchOffset: 0 }]))).responses[0]!.partitions[0]!.errorCode);
      await attempt('metadata, unknown topic', async (c) => {
        const meta = await c.send(3, 9, { topics: [{ topicId: ZERO_UUID, name: unknown }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false });
        return meta.topics[0]!.errorCode;
      });
    } finally {
      await cluster.redis.start();
    }
    expect(outcomes).toEqual({
      'produce, known topic': 'REQUEST_TIMED_OUT',
      'fetch, known topic': 'REQUEST_TIMED_OUT',
      'produce, unknown topic': 'REQUEST_TIMED_OUT',
      'fetch, unknown topic': 'REQUEST_TIMED_OUT',
      'metadata, unknown topic': 'REQUEST_TIMED_OUT',
    });
  });

  it('serves again, with nothing acknowledged lost, once Redis is back', async () => {
    const known = `redis-down-known-${RUN}`;
    await expectBrokersServe(known);
    const stored = await readAll(cluster.bootstrap, known);
    expect(stored.map((r) => r.value)).toEqual(['before', ...cluster.brokers.map((b) => `after-restart-${b.port}`)]);
  });
});
