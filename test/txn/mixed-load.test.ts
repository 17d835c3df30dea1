/**
 * Transactional and idempotent producers on the same partitions, under load: four kafkajs
 * transactional producers commit or abort (seeded choice) transactions spanning a random
 * subset of the partitions, while four kafkajs idempotent producers write alongside. A
 * checker reads read_committed throughout the run, and at the end both isolation levels are
 * read in full. Asserted: no aborted record was ever given to a read_committed reader (not
 * even transiently), no committed or acknowledged record is missing or duplicated, each
 * producer's records keep their order in every partition, and every partition ends settled
 * (LSO = high watermark).
 *
 * Runs for STRATA_SOAK_SECONDS (default 60, as the acceptance asks; set it lower for a quick local run).
 */
import kafkajs, { type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../wire/index.js';
import { uniqueTopic } from '../helpers/compat.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { RawClient } from '../helpers/raw-client.js';
import { Rng } from '../helpers/rng.js';
import { committedRecords, fetchOnce, readPartition, stableOffsets } from '../helpers/raw-txn.js';
import { createTopic } from '../helpers/topics.js';

const { Kafka, logLevel } = kafkajs;

const SECONDS = Number(process.env.STRATA_SOAK_SECONDS ?? 60);
const SEED = Number(process.env.STRATA_TXN_SEED ?? 0x5eed);
const PARTITIONS = 3;
const TRANSACTIONAL = 4;
const IDEMPOTENT = 4;

let cluster: Cluster;
const producers: Producer[] = [];

beforeAll(async () => {
  cluster = await startCluster({ brokerArgs: ['--transaction-max-timeout-ms', '60000'] });
});

afterAll(async () => {
  await Promise.all(producers.map((p) => p.disconnect().catch(() => undefined)));
  await cluster?.stop();
});

/** A value names its producer and its place in that producer's order: `<producer>:<n>`. */
const valueOf = (producer: string, n: number): string => `${producer}:${String(n).padStart(7, '0')}`;
const producerOf = (value: string): string => value.slice(0, value.indexOf(':'));
const rankOf = (value: string): number => Number(value.slice(value.indexOf(':') + 1));

describe('transactional and idempotent producers on the same partitions', () => {
  it(`${SECONDS} s of mixed load: no aborted record visible, none missing, order kept`, { timeout: (SECONDS + 120) * 1000 }, async () => {
    const topic = uniqueTopic('txn-mixed');
    await createTopic(cluster.bootstrap, topic, PARTITIONS);
    const kafka = new Kafka({ clientId: 'txn-mixed', brokers: [cluster.bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 } });
    const stopAt = Date.now() + SECONDS * 1000;

    const committed = new Set<string>();
    const aborted = new Set<string>();
    const acked = new Set<string>();
    let transactions = 0;

    const transactional = async (t: number): Promise<void> => {
      const name = `t${t}`;
      const rand = new Rng(SEED + t);
      const producer = kafka.producer({ transactionalId: `${topic}-${name}`, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      producers.push(producer);
      await producer.connect();
      let n = 0;
      while (Date.now() < stopAt) {
        const txn = await producer.transaction();
        const values: { partition: number; value: string }[] = [];
        const count = 1 + Math.floor(rand.next() * 12);
        // Two or three sends per transaction, each to one or more partitions.
        for (let i = 0; i < count; i++) values.push({ partition: Math.floor(rand.next() * PARTITIONS), value: valueOf(name, n++) });
        const cut = Math.max(1, Math.floor(count / 2));
        await txn.send({ topic, messages: values.slice(0, cut) });
        if (cut < count) await txn.send({ topic, messages: values.slice(cut) });
        const abort = rand.next() < 0.3;
        if (abort) await txn.abort();
        else await txn.commit();
        for (const v of values) (abort ? aborted : committed).add(v.value);
        transactions++;
      }
    };

    const idempotent = async (k: number): Promise<void> => {
      const name = `i${k}`;
      const rand = new Rng(SEED + 100 + k);
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      producers.push(producer);
      await producer.connect();
      let n = 0;
      while (Date.now() < stopAt) {
        const values = Array.from({ length: 1 + Math.floor(rand.next() * 8) }, () => ({ partition: Math.floor(rand.next() * PARTITIONS), value: valueOf(name, n++) }));
        await producer.send({ topic, acks: -1, messages: values });
        for (const v of values) acked.add(v.value);
      }
    };

    // The checker: follows every partition read_committed while the producers run, keeping
    // every value it is given.
    const everCommitted = new Set<string>();
    let checking = true;
    const checkerClient = await RawClient.connect(cluster.bootstrap, 'txn-mixed-checker');
    const checker = (async () => {
      const next = new Array<number>(PARTITIONS).fill(0);
      while (checking) {
        for (let p = 0; p < PARTITIONS; p++) {
          const f = await fetchOnce(checkerClient, topic, p, next[p]!, true);
          if (f.errorCode !== ErrorCode.NONE) throw new Error(`checker fetch ${p}@${next[p]}: error ${f.errorCode}`);
          for (const r of committedRecords(f)) if (r.offset >= next[p]!) everCommitted.add(r.value);
          if (f.batches.length > 0) next[p] = f.batches[f.batches.length - 1]!.lastOffset + 1;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    try {
      await Promise.all([...Array.from({ length: TRANSACTIONAL }, (_, t) => transactional(t)), ...Array.from({ length: IDEMPOTENT }, (_, k) => idempotent(k))]);
    } finally {
      checking = false;
      await checker;
    }

    try {
      const problems: string[] = [];
      const note = (s: string): void => {
        if (problems.length < 20) problems.push(s);
      };
      const visible = new Set([...committed, ...acked]);
      for (const v of everCommitted) if (aborted.has(v)) note(`aborted ${v} was given to the read_committed checker`);

      const seenCommitted = new Set<string>();
      const seenAll = new Set<string>();
      for (let p = 0; p < PARTITIONS; p++) {
        const o = await stableOffsets(checkerClient, topic, p);
        if (o.lso !== o.hw) note(`partition ${p}: LSO ${o.lso} below high watermark ${o.hw} after every transaction ended`);
        for (const [label, records, seen] of [
          ['read_committed', await readPartition(checkerClient, topic, p, true), seenCommitted],
          ['read_uncommitted', await readPartition(checkerClient, topic, p, false), seenAll],
        ] as const) {
          const last = new Map<string, number>();
          for (const r of records) {
            if (seen.has(r.value)) note(`${label}: ${r.value} twice (again at ${p}@${r.offset})`);
            seen.add(r.value);
            if (label === 'read_committed' && aborted.has(r.value)) note(`read_committed: aborted ${r.value} at ${p}@${r.offset}`);
            const who = producerOf(r.value);
            if ((last.get(who) ?? -1) >= rankOf(r.value)) note(`${label}: ${r.value} at ${p}@${r.offset} after ${who}:${last.get(who)}`);
            last.set(who, rankOf(r.value));
          }
        }
      }
      for (const v of visible) if (!seenCommitted.has(v)) note(`read_committed is missing ${v}`);
      for (const v of [...visible, ...aborted]) if (!seenAll.has(v)) note(`read_uncommitted is missing ${v}`);
      for (const v of seenAll) if (!visible.has(v) && !aborted.has(v)) note(`read_uncommitted has ${v}, never sent`);
      expect(problems, `seed ${SEED}`).toEqual([]);
      expect(seenCommitted.size).toBe(visible.size);
      expect(transactions).toBeGreaterThan(0);
      expect(aborted.size).toBeGreaterThan(0);
      console.info(`mixed load ${SECONDS} s: ${transactions} transactions, ${committed.size} committed, ${aborted.size} aborted, ${acked.size} idempotent records; checker saw ${everCommitted.size}`);
    } finally {
      checkerClient.close();
    }
  });
});
