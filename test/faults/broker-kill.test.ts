/**
 * A broker SIGKILLed mid-produce (docs/architecture.md §12: kill any broker at any moment and no
 * acknowledged record is lost). Three brokers run as child processes on the file store; a
 * producer with retries writes uniquely numbered records across six partitions while the
 * broker leading the most of them is killed. The producer must finish on its own through
 * the survivors (the victim's registration expires after --broker-session-timeout-ms 3000),
 * every acknowledged record must be stored — exactly once and in order per partition when
 * the broker offers idempotence — and a reader fetching from a survivor throughout must see
 * exactly what was stored. Once with kafkajs, once with librdkafka.
 *
 * Needs the built CLI in dist/ (`node scripts/setup.mjs --quiet`, which `npm test` runs).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKey, ErrorCode } from '../../wire/index.js';
import { decodeBatchSync, splitBatches } from '../../wire/records/index.js';
import { startCluster, type Cluster, type ClusterBroker } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { readAll, type ReadRecord } from '../helpers/read-all.js';
import { ZERO_UUID, expectAcknowledgedStored, fetchBody } from '../helpers/faults.js';
import { createTopic } from '../helpers/topics.js';
import { waitFor } from '../helpers/wait.js';

const { Kafka, logLevel } = kafkajs;

const RDKAFKA_DRIVER = path.join(import.meta.dirname, '..', 'helpers', 'clients', 'rdkafka-producer.mjs');
const PARTITIONS = 6;

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ processes: true, brokers: 3 });
});

afterAll(async () => {
  await cluster?.stop();
});

function metadataBody(topic: string) {
  return { topics: [{ topicId: ZERO_UUID, name: topic }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false };
}

interface Scenario {
  topic: string;
  /** The broker leading the most partitions of the topic: the one to kill. */
  victim: ClusterBroker;
  /** A broker that stays up, as `host:port`. */
  survivor: string;
  /** Whether the brokers serve InitProducerId (idempotent producers). */
  idempotent: boolean;
}

/**
 * Brings every broker back up (an earlier test may have killed one), creates a fresh topic
 * once all three brokers are visible, and picks the victim.
 */
async function prepare(tag: string): Promise<Scenario> {
  for (let i = 0; i < cluster.brokers.length; i++) {
    const child = cluster.brokers[i]!.child!;
    if (child.exitCode !== null || child.signalCode !== null) await cluster.restartBroker(i);
  }
  const topic = `broker-kill-${tag}-${randomBytes(4).toString('hex')}`;
  const admin = await RawClient.connect(cluster.bootstrap, 'kill-admin');
  try {
    await createTopic(admin, topic, PARTITIONS);
    const versions = await admin.send(18, 3, { clientSoftwareName: 'broker-kill', clientSoftwareVersion: '1' });
    const idempotent = versions.apiKeys.some((k) => k.apiKey === ApiKey.InitProducerId);
    // Each broker learns of the others on its next heartbeat (and of a restarted one's return).
    const meta = await waitFor('Metadata to list all three brokers', async () => {
      const m = await admin.send(3, 9, metadataBody(topic));
      return m.brokers.length === 3 ? m : undefined;
    });
    const leads = new Map<number, number>();
    for (const p of meta.topics[0]!.partitions) leads.set(p.leaderId, (leads.get(p.leaderId) ?? 0) + 1);
    const victimNode = [...leads].sort((a, b) => b[1] - a[1])[0]![0];
    const victimPort = meta.brokers.find((b) => b.nodeId === victimNode)!.port;
    const victim = cluster.brokers.find((b) => b.port === victimPort)!;
    const survivor = `127.0.0.1:${cluster.brokers.find((b) => b !== victim)!.port}`;
    return { topic, victim, survivor, idempotent };
  } finally {
    admin.close();
  }
}

/** Waits until the survivors' Metadata no longer names the victim (its registration expired). */
async function expectVictimForgotten(s: Scenario): Promise<void> {
  await waitFor('the killed broker to leave Metadata', async () => {
    const c = await RawClient.connect(s.survivor, 'kill-check');
    try {
      const m = await c.send(3, 9, metadataBody(s.topic));
      return m.brokers.length === 2 && m.brokers.every((b) => b.port !== s.victim.port) ? true : undefined;
    } finally {
      c.close();
    }
  }, 20_000, 200);
}

/** Each partition's stored values in offset order. */
function valuesByPartition(stored: readonly ReadRecord[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const r of stored) {
    const list = out.get(r.partition) ?? [];
    list.push(r.value ?? '');
    out.set(r.partition, list);
  }
  return out;
}

interface ReaderResult {
  records: { partition: number; offset: number; value: string }[];
  errors: string[];
}

/**
 * Polls every partition through long-poll Fetches on one connection until `done()` and it
 * has caught up with the high watermarks it last saw; bounded by `maxRounds`.
 */
async function runReader(address: string, topic: string, done: () => boolean, maxRounds = 5000): Promise<ReaderResult> {
  const client = await RawClient.connect(address, 'kill-reader');
  const positions = new Array<number>(PARTITIONS).fill(0);
  const hws = new Array<number>(PARTITIONS).fill(0);
  const out: ReaderResult = { records: [], errors: [] };
  try {
    for (let round = 0; round < maxRounds; round++) {
      const finished = done();
      const res = await client.send(1, 11, fetchBody(topic, positions.map((fetchOffset, partition) => ({ partition, fetchOffset })), 200, 1));
      for (const p of res.responses[0]!.partitions) {
        if (p.errorCode !== ErrorCode.NONE) {
          out.errors.push(`partition ${p.partitionIndex}: error ${p.errorCode}`);
          continue;
        }
        hws[p.partitionIndex] = Number(p.highWatermark);
        for (const view of splitBatches((p.records as Buffer | null) ?? Buffer.alloc(0))) {
          for (const r of decodeBatchSync(view).records) {
            if (r.offset < positions[p.partitionIndex]!) continue;
            out.records.push({ partition: p.partitionIndex, offset: r.offset, value: r.value!.toString() });
          }
          positions[p.partitionIndex] = view.baseOffset + view.lastOffsetDelta + 1;
        }
      }
      // `finished` was read before this round's fetch, so the hws it saw include every commit.
      if (finished && positions.every((pos, i) => pos >= hws[i]!)) return out;
    }
    out.errors.push(`reader did not catch up within ${maxRounds} rounds`);
    return out;
  } finally {
    client.close();
  }
}

describe('SIGKILL of a broker during produce', () => {
  it('kafkajs: loses no acknowledged record; the producer finishes through the survivors and a reader keeps reading', async () => {
    const SENDS = 240;
    const PER_SEND = 10;
    /** Producing loops; each owns PARTITIONS / WORKERS partitions. */
    const WORKERS = 3;
    /** Kill once this many sends were acknowledged: well inside the run. */
    const KILL_AFTER_SENDS = 60;
    const s = await prepare('kafkajs');

    const kafka = new Kafka({
      clientId: 'broker-kill',
      brokers: cluster.brokers.map((b) => `127.0.0.1:${b.port}`),
      logLevel: logLevel.NOTHING,
      connectionTimeout: 2000,
      requestTimeout: 10_000,
      retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const producer = kafka.producer({
      allowAutoTopicCreation: false,
      idempotent: s.idempotent,
      ...(s.idempotent ? { maxInFlightRequests: 1 } : {}),
      retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 },
    });
    const sent = new Set<string>();
    const sentOrder = new Map<number, string[]>();
    const acknowledged = new Set<string>();
    const failures: string[] = [];
    let acknowledgedSends = 0;
    let producing = true;
    const reader = runReader(s.survivor, s.topic, () => !producing);
    try {
      await producer.connect();
      // Each send names one partition, and each partition belongs to one loop. kafkajs loses
      // messages of a send spanning brokers when a failed broker's partitions move to a broker
      // that already answered that send (tulios/kafkajs#1303), and its idempotent producer
      // reuses sequence numbers when two sends of one partition overlap a failure; neither is
      // what this test is about.
      let next = 0;
      const worker = async (w: number): Promise<void> => {
        for (let k = 0; next < SENDS; k++) {
          const n = next++;
          const partition = w + WORKERS * (k % (PARTITIONS / WORKERS));
          const messages = Array.from({ length: PER_SEND }, (_, i) => ({ partition, key: `k${n}`, value: `rec-${n}-${i}` }));
          for (const m of messages) sent.add(m.value);
          sentOrder.set(partition, [...(sentOrder.get(partition) ?? []), ...messages.map((m) => m.value)]);
          try {
            await producer.send({ topic: s.topic, acks: -1, messages });
            for (const m of messages) acknowledged.add(m.value);
            acknowledgedSends++;
          } catch (err) {
            failures.push(`send ${n}: ${(err as Error).message}`);
          }
        }
      };
      const workers = Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
      await waitFor('the first sends to be acknowledged', () => (acknowledgedSends >= KILL_AFTER_SENDS || failures.length > 0 ? true : undefined), 60_000);
      await s.victim.kill();
      const sendsAtKill = acknowledgedSends;
      await workers;
      // The run really straddled the kill.
      expect(sendsAtKill).toBeLessThan(SENDS);
    } finally {
      producing = false;
      await producer.disconnect().catch(() => undefined);
    }
    const read = await reader;

    expect(failures).toEqual([]);
    expect(acknowledged.size).toBe(SENDS * PER_SEND);
    const stored = await readAll(s.survivor, s.topic);
    expectAcknowledgedStored(stored, acknowledged, sent, { exactlyOnce: s.idempotent });
    if (s.idempotent) expect(valuesByPartition(stored)).toEqual(sentOrder);
    expect(read.errors).toEqual([]);
    const readInOrder = [...read.records].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    expect(readInOrder).toEqual(stored.map((r) => ({ partition: r.partition, offset: r.offset, value: r.value })));
    await expectVictimForgotten(s);
  });

  it('librdkafka: every delivery-reported record is stored, and the producer finishes through the survivors', { timeout: 120_000 }, async () => {
    const ROUNDS = 60;
    const PER_ROUND = 48;
    const KILL_AFTER = 600;
    const s = await prepare('rdkafka');
    const args = { bootstrap: cluster.bootstrapAll, topic: s.topic, partitions: PARTITIONS, rounds: ROUNDS, perRound: PER_ROUND, pauseMs: 40, deadlineMs: 60_000, idempotent: s.idempotent };
    const child = spawn(process.execPath, [RDKAFKA_DRIVER, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let result: { delivered: string[]; failed: string[]; fatal: string | null } | null = null;
    let deliveredAtKill = -1;
    try {
      const lines = createInterface({ input: child.stdout });
      for await (const line of lines) {
        const progress = /^progress (\d+)$/.exec(line);
        if (progress && deliveredAtKill < 0 && Number(progress[1]) >= KILL_AFTER) {
          deliveredAtKill = Number(progress[1]);
          await s.victim.kill();
        } else if (line.startsWith('result ')) {
          result = JSON.parse(line.slice('result '.length)) as typeof result;
        }
      }
      const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
      expect(code, stderr).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    expect(result, stderr).not.toBeNull();
    expect(result!.fatal).toBeNull();
    expect(result!.failed).toEqual([]);
    // The kill happened while records were still being produced.
    expect(deliveredAtKill).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(deliveredAtKill).toBeLessThan(ROUNDS * PER_ROUND);

    const sentOrder = new Map<number, string[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PER_ROUND; i++) {
        const p = i % PARTITIONS;
        sentOrder.set(p, [...(sentOrder.get(p) ?? []), `${s.topic}-${round}-${i}`]);
      }
    }
    const sent = new Set([...sentOrder.values()].flat());
    expect(new Set(result!.delivered)).toEqual(sent);
    const stored = await readAll(s.survivor, s.topic);
    expectAcknowledgedStored(stored, new Set(result!.delivered), sent, { exactlyOnce: s.idempotent });
    if (s.idempotent) expect(valuesByPartition(stored)).toEqual(sentOrder);
    await expectVictimForgotten(s);
  });
});
