// @confluentinc/kafka-javascript (librdkafka inside) consumer-group member for the group
// compatibility suites, using the node-rdkafka style KafkaConsumer so that librdkafka's own
// configuration names apply:
//
//   node groups-cfk.mjs '{"bootstrap": ..., "groupId": ..., ...}'
//
// It speaks the same line protocol as groups-rdkafka.py: JSON events on stdout ("assign",
// "revoke", "r" per record, "closed"), "stop" on stdin to close and exit 0, exit 1 with the
// reason on stderr on failure or at the deadline. With autoCommit false it commits
// synchronously (commitSync) after every batch it processed.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { KafkaConsumer, CODES } = require('@confluentinc/kafka-javascript');

const args = JSON.parse(process.argv[2]);

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(err) {
  process.stderr.write(`groups-cfk: ${err && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
}

const conf = {
  'metadata.broker.list': args.bootstrap,
  'client.id': args.clientId ?? 'groups-cfk',
  'group.id': args.groupId,
  'partition.assignment.strategy': args.strategy,
  'enable.auto.commit': Boolean(args.autoCommit),
  'auto.commit.interval.ms': 200,
  'session.timeout.ms': args.sessionTimeoutMs ?? 6000,
  'heartbeat.interval.ms': 300,
  'fetch.wait.max.ms': 100,
  'allow.auto.create.topics': false,
  'broker.address.family': 'v4',
  'socket.timeout.ms': 5000,
  'reconnect.backoff.max.ms': 500,
  rebalance_cb: true,
};
if (args.instanceId) conf['group.instance.id'] = args.instanceId;

const consumer = new KafkaConsumer(conf, { 'auto.offset.reset': 'earliest' });
const partitions = (tps) => tps.map((tp) => tp.partition).sort((a, b) => a - b);
consumer.on('rebalance', (err, assignment) => {
  if (err.code === CODES.ERRORS.ERR__ASSIGN_PARTITIONS) emit({ e: 'assign', partitions: partitions(assignment) });
  else if (err.code === CODES.ERRORS.ERR__REVOKE_PARTITIONS) emit({ e: 'revoke', partitions: partitions(assignment) });
  else fail(err);
});
consumer.on('rebalance.error', fail);
consumer.on('event.error', fail);

let stopping = false;
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  if (chunk.split('\n').some((l) => l.trim() === 'stop')) stopping = true;
});
process.stdin.on('end', () => {
  stopping = true;
});

const deadline = Date.now() + (args.deadlineS ?? 60) * 1000;

function loop() {
  if (stopping) {
    consumer.disconnect(() => {
      emit({ e: 'closed' });
      process.exit(0);
    });
    return;
  }
  if (Date.now() > deadline) fail(new Error('deadline passed before the harness said stop'));
  consumer.consume(200, (err, messages) => {
    if (err && err.code !== CODES.ERRORS.ERR__TIMED_OUT) return fail(err);
    for (const m of messages ?? []) {
      emit({ e: 'r', p: m.partition, o: m.offset, k: m.key === null || m.key === undefined ? null : m.key.toString(), v: m.value.toString() });
    }
    if ((messages ?? []).length > 0 && !args.autoCommit) {
      try {
        consumer.commitSync(null);
      } catch (e) {
        // Nothing stored to commit (e.g. right after a rebalance) is not a failure.
        if (e.code !== CODES.ERRORS.ERR__NO_OFFSET) return fail(e);
      }
    }
    setTimeout(loop, 0);
  });
}

consumer.setDefaultConsumeTimeout(100);
consumer.connect({ timeout: 10000 }, (err) => {
  if (err) return fail(err);
  consumer.subscribe([args.topic]);
  loop();
});
