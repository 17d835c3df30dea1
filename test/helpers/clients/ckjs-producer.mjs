// @confluentinc/kafka-javascript (librdkafka 2.15 inside) idempotent producer driver for
// test/compat/confluent-kafka-javascript.test.ts, through its node-rdkafka style Producer.
//
//   node ckjs-producer.mjs '{"bootstrap": ..., "topic": ..., "count": N, "tag": ..., ...}'
//
// Produces `count` records built by the same rule as the test (see recordOf), waits for every
// delivery report, and prints one JSON line: the partition and offset reported for each
// record, by record index, and the elapsed time. Any delivery error, a fatal idempotence
// error or the deadline passing exits 1 with the reason on stderr.
import Kafka from '@confluentinc/kafka-javascript';

const args = JSON.parse(process.argv[2]);
const deadline = Date.now() + args.deadlineMs;

/** Record `i`: key cycles over `keys` values, so librdkafka's partitioner spreads them. */
function recordOf(i) {
  return {
    key: Buffer.from(`k-${i % args.keys}`),
    value: Buffer.from(`${args.tag}-${i}`),
    timestamp: args.baseTimestamp + i,
    headers: [{ i: Buffer.from(String(i)) }],
  };
}

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

const producer = new Kafka.Producer({
  'bootstrap.servers': args.bootstrap,
  'client.id': 'compat-ckjs',
  'broker.address.family': 'v4',
  'socket.timeout.ms': 10000,
  'socket.connection.setup.timeout.ms': 5000,
  'api.version.request.timeout.ms': 5000,
  'reconnect.backoff.max.ms': 500,
  'enable.idempotence': true,
  'linger.ms': args.lingerMs,
  'message.timeout.ms': 60000,
  'request.timeout.ms': 10000,
  'queue.buffering.max.messages': 20000,
  dr_cb: true,
});

const partitions = new Array(args.count).fill(-1);
const offsets = new Array(args.count).fill(-1);
let reported = 0;
const errors = [];
producer.on('delivery-report', (err, report) => {
  reported++;
  if (err) {
    if (errors.length < 10) errors.push(String(err));
    return;
  }
  partitions[report.opaque] = report.partition;
  offsets[report.opaque] = report.offset;
});
producer.on('event.error', (err) => {
  // A fatal error (idempotence broken, e.g. an unexpected sequence) ends the run; others are
  // transient and librdkafka retries them.
  if (err.isFatal) fail(`fatal producer error: ${err}`);
});
producer.setPollInterval(10);

await new Promise((resolve, reject) => producer.connect({ timeout: 10000 }, (err) => (err ? reject(err) : resolve())));
const started = Date.now();

const QUEUE_FULL = Kafka.CODES.ERRORS.ERR__QUEUE_FULL;
for (let i = 0; i < args.count; i++) {
  const r = recordOf(i);
  for (;;) {
    try {
      producer.produce(args.topic, null, r.value, r.key, r.timestamp, i, r.headers);
      break;
    } catch (err) {
      if (err.code !== QUEUE_FULL) throw err;
      if (Date.now() > deadline) fail(`local queue still full at record ${i}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
}
while (reported < args.count) {
  if (Date.now() > deadline) fail(`${reported} of ${args.count} delivery reports before the deadline`);
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const elapsedMs = Date.now() - started;
if (errors.length > 0) fail(`delivery errors: ${errors.join('; ')}`);
await new Promise((resolve) => producer.disconnect(5000, () => resolve()));
process.stdout.write(JSON.stringify({ partitions, offsets, elapsedMs }) + '\n');
