/**
 * librdkafka producer load (run as its own process by the benchmark, so the client's threads
 * and callbacks are measured apart from the benchmark's other work):
 *
 *   node dist/bench/rdkafka-producer.js '{"bootstrap":…,"topic":…,"recordBytes":1024,"durationMs":…}'
 *
 * Produces records of `recordBytes` random bytes (no key, so librdkafka's sticky partitioner
 * spreads them) with acks=-1 for `durationMs`, then flushes and waits for every delivery
 * report. Prints one JSON line: delivered records and value bytes, errors, elapsed seconds,
 * and this process's CPU seconds.
 */
import Kafka from '@confluentinc/kafka-javascript';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

interface Args {
  bootstrap: string;
  topic: string;
  recordBytes: number;
  durationMs: number;
  lingerMs: number;
  batchSize: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;

const producer = new Kafka.Producer({
  'bootstrap.servers': args.bootstrap,
  'client.id': 'strata-bench-rdkafka',
  'broker.address.family': 'v4',
  acks: -1,
  'linger.ms': args.lingerMs,
  'batch.size': args.batchSize,
  'batch.num.messages': 100_000,
  'queue.buffering.max.messages': 1_000_000,
  'queue.buffering.max.kbytes': 1024 * 1024,
  'compression.codec': 'none',
  'message.timeout.ms': 60_000,
  'request.timeout.ms': 30_000,
  dr_cb: true,
});

let delivered = 0;
let failed = 0;
const errors: string[] = [];
producer.on('delivery-report', (err) => {
  if (err) {
    failed++;
    if (errors.length < 5) errors.push(String(err));
  } else delivered++;
});
producer.on('event.error', (err) => {
  if (errors.length < 5) errors.push(`event.error: ${String(err)}`);
});
producer.setPollInterval(5);

await new Promise<void>((resolve, reject) => producer.connect({ timeout: 10_000 }, (err) => (err ? reject(new Error(String(err))) : resolve())));

const value = randomBytes(args.recordBytes);
const QUEUE_FULL = Kafka.CODES.ERRORS.ERR__QUEUE_FULL;
const cpuStart = process.cpuUsage();
const start = performance.now();
let produced = 0;
while (performance.now() - start < args.durationMs) {
  // Produce in slices, yielding between them so delivery reports are served.
  for (let i = 0; i < 2000; i++) {
    try {
      producer.produce(args.topic, null, value, null, Date.now());
      produced++;
    } catch (err) {
      if ((err as { code?: number }).code !== QUEUE_FULL) throw err;
      await new Promise((resolve) => setTimeout(resolve, 2));
      break;
    }
  }
  await new Promise((resolve) => setImmediate(resolve));
}
await new Promise<void>((resolve, reject) => producer.flush(60_000, (err) => (err ? reject(new Error(String(err))) : resolve())));
// Delivery reports of the last requests may still be in the queue after flush.
const drainUntil = performance.now() + 10_000;
while (delivered + failed < produced && performance.now() < drainUntil) await new Promise((resolve) => setTimeout(resolve, 5));
const seconds = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpuStart);
await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
process.stdout.write(
  JSON.stringify({ produced, delivered, failed, errors, seconds, valueBytes: delivered * args.recordBytes, cpuSeconds: (cpu.user + cpu.system) / 1e6 }) + '\n',
);
process.exit(0);
