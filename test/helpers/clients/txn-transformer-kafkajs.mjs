// kafkajs consume-transform-produce worker for test/txn/consume-transform-produce.test.ts:
//
//   node txn-transformer-kafkajs.mjs '{"bootstrap": ..., "input": ..., "output": ...,
//        "groupId": ..., "transactionalId": ..., "chunk": N, "pauseMs": M, "deadlineS": S}'
//
// Consumes `input` in group `groupId` (read_committed, no auto-commit) and, per chunk of at
// most N records of one partition, in one transaction: writes "out:<value>" with the same key
// to the same partition of `output`, pauses M ms (so that a kill often lands inside an open
// transaction), commits the consumed offsets with sendOffsets, and commits. Reports one JSON
// line per committed transaction, {"e": "committed", "p": partition, "next": offset}, and
// {"e": "ready"} once the producer has fenced any previous instance. "stop" on stdin
// disconnects and exits 0; any failure exits 1 with the reason on stderr.
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
const args = JSON.parse(process.argv[2]);

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(err) {
  process.stderr.write(`txn-transformer-kafkajs: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
}

setTimeout(() => fail(new Error('deadline passed before the harness said stop')), args.deadlineS * 1000).unref();

const kafka = new Kafka({
  clientId: 'txn-transformer-kafkajs',
  brokers: args.bootstrap.split(','),
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 },
});
const producer = kafka.producer({ transactionalId: args.transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 10000, allowAutoTopicCreation: false });
const consumer = kafka.consumer({ groupId: args.groupId, readUncommitted: false, sessionTimeout: 3000, heartbeatInterval: 300, maxWaitTimeInMs: 100, retry: { retries: 10 } });
consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stopping = false;
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  if (chunk.split('\n').some((l) => l.trim() === 'stop')) void stop();
});

async function stop() {
  if (stopping) return;
  stopping = true;
  await consumer.disconnect();
  await producer.disconnect();
  emit({ e: 'closed' });
  process.exit(0);
}

try {
  await producer.connect();
  // The transactional InitProducerId happens at the first transaction: begin and end an empty
  // one now, so that a previous instance is fenced and its transaction settled (aborted, or
  // its commit finished) before this one reads the group's committed offsets.
  const first = await producer.transaction();
  await first.abort();
  emit({ e: 'ready' });

  await consumer.connect();
  await consumer.subscribe({ topic: args.input, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      for (let i = 0; i < batch.messages.length; i += args.chunk) {
        if (!isRunning() || isStale() || stopping) return;
        const chunk = batch.messages.slice(i, i + args.chunk);
        const last = chunk[chunk.length - 1];
        const next = Number(last.offset) + 1;
        const txn = await producer.transaction();
        try {
          await txn.send({ topic: args.output, messages: chunk.map((m) => ({ partition: batch.partition, key: m.key, value: `out:${m.value.toString()}` })) });
          await sleep(args.pauseMs);
          await txn.sendOffsets({ consumerGroupId: args.groupId, topics: [{ topic: args.input, partitions: [{ partition: batch.partition, offset: String(next) }] }] });
          await txn.commit();
        } catch (err) {
          await txn.abort().catch(() => undefined);
          throw err;
        }
        resolveOffset(last.offset);
        await heartbeat();
        emit({ e: 'committed', p: batch.partition, next });
      }
    },
  });
} catch (err) {
  fail(err);
}
