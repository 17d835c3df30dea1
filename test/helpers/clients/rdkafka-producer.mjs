// Idempotent librdkafka producer (@confluentinc/kafka-javascript, node-rdkafka style API) for
// the fault tests, run as a child process so librdkafka's threads never live in the test
// worker and a hang ends at the process deadline.
//
//   node rdkafka-producer.mjs '{"bootstrap": ..., "topic": ..., "partitions": P, "rounds": R,
//                               "perRound": N, "pauseMs": M, "deadlineMs": D, "idempotent": bool}'
//
// Produces R rounds of N records ("<topic>-<round>-<i>", explicit partition i % P), pausing M
// ms between rounds so that the run lasts long enough for a fault to hit it. Prints
// `progress <delivered>` lines as delivery reports arrive, then one final line
// `result {"delivered": [...values], "failed": [...], "fatal": null | "..."}`.
// Exits 0 once every record has a delivery report (success or failure), 1 at the deadline.
import Kafka from '@confluentinc/kafka-javascript';

const args = JSON.parse(process.argv[2]);
const deadline = Date.now() + args.deadlineMs;
const total = args.rounds * args.perRound;

const producer = new Kafka.Producer({
  'bootstrap.servers': args.bootstrap,
  'client.id': 'fault-rdkafka',
  'broker.address.family': 'v4',
  'enable.idempotence': args.idempotent !== false,
  acks: 'all',
  'linger.ms': 2,
  'socket.timeout.ms': 10000,
  'socket.connection.setup.timeout.ms': 3000,
  'reconnect.backoff.ms': 50,
  'reconnect.backoff.max.ms': 500,
  'retry.backoff.ms': 50,
  'retry.backoff.max.ms': 500,
  'topic.metadata.refresh.interval.ms': 1000,
  'message.timeout.ms': Math.max(10000, args.deadlineMs - 5000),
  'request.timeout.ms': 5000,
  dr_cb: true,
});

const delivered = [];
const failed = [];
let fatal = null;
let reported = 0;
let lastProgress = 0;

producer.on('delivery-report', (err, report) => {
  reported++;
  const value = String(report.opaque);
  if (err) failed.push(`${value}: ${err}`);
  else delivered.push(value);
  if (delivered.length - lastProgress >= 50 || reported === total) {
    lastProgress = delivered.length;
    process.stdout.write(`progress ${delivered.length}\n`);
  }
});
producer.on('event.error', (err) => {
  if (err.isFatal && fatal === null) fatal = String(err);
});
producer.setPollInterval(10);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Prints the result and exits; never resolves, so no code after it runs. */
function finish(code) {
  process.stdout.write(`result ${JSON.stringify({ delivered, failed, fatal })}\n`);
  producer.disconnect(3000, () => process.exit(code));
  setTimeout(() => process.exit(code), 4000).unref();
  return new Promise(() => {});
}

await new Promise((resolve, reject) => producer.connect({ timeout: 10000 }, (err) => (err ? reject(err) : resolve())));

const QUEUE_FULL = Kafka.CODES.ERRORS.ERR__QUEUE_FULL;
for (let round = 0; round < args.rounds && fatal === null; round++) {
  for (let i = 0; i < args.perRound; i++) {
    const value = `${args.topic}-${round}-${i}`;
    for (;;) {
      try {
        producer.produce(args.topic, i % args.partitions, Buffer.from(value), Buffer.from(`k${i}`), null, value);
        break;
      } catch (err) {
        if (err.code !== QUEUE_FULL) throw err;
        if (Date.now() > deadline) await finish(1);
        await sleep(5);
      }
    }
  }
  await sleep(args.pauseMs);
}
while (reported < total && fatal === null) {
  if (Date.now() > deadline) await finish(1);
  await sleep(20);
}
await finish(0);
