"""confluent-kafka-python (librdkafka) producer and consumer for
test/compat/log-compaction-python.test.ts. Run with Debian's interpreter, which has
python3-confluent-kafka:

    /usr/bin/python3 compaction_client.py '{"mode": "produce", "bootstrap": ..., "topic": ...,
        "steps": [{"records": [["k1", "v1"], ["k2", null]]}, {"aborted": [["k1", "x"]]}, ...]}'
    /usr/bin/python3 compaction_client.py '{"mode": "consume", "bootstrap": ..., "topic": ...}'

produce: per step, sends its records to partition 0 and flushes (one batch per step); an
"aborted" step sends them in a transaction of its own transactional producer and aborts it.
A null value is a tombstone. Prints {"records": [[offset, key, value, aborted], ...]} in send
order, offsets as the broker acknowledged them.

consume: reads partition 0 from the beginning (isolation.level read_uncommitted, so records of
aborted transactions would show) up to the end of the partition, and prints
{"records": [[offset, key, value], ...]} in the order received.

Any failure, including the deadline passing, exits 1 with the reason on stderr.
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

DEADLINE_S = 30


def common(args):
    return {
        "bootstrap.servers": args["bootstrap"],
        "broker.address.family": "v4",
        "socket.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 500,
    }


def produce(args):
    topic = args["topic"]
    out = []

    def sender(conf):
        return Producer({**common(args), "client.id": "compaction-python", "linger.ms": 50, **conf})

    def send(producer, records, aborted):
        acks = []

        def delivered(err, msg):
            if err is not None:
                raise KafkaException(err)
            acks.append(msg.offset())

        for key, value in records:
            producer.produce(topic, key=key.encode(), value=None if value is None else value.encode(), partition=0, on_delivery=delivered)
        if producer.flush(DEADLINE_S) != 0:
            raise TimeoutError("records were not delivered before the deadline")
        if len(acks) != len(records):
            raise RuntimeError(f"{len(acks)} of {len(records)} records acknowledged")
        for (key, value), offset in zip(records, acks):
            out.append([offset, key, value, aborted])

    plain = sender({"acks": "all"})
    transactional = None
    for step in args["steps"]:
        if "aborted" in step:
            if transactional is None:
                transactional = sender({"transactional.id": f"{topic}-txn", "transaction.timeout.ms": 10000})
                transactional.init_transactions(DEADLINE_S)
            transactional.begin_transaction()
            send(transactional, step["aborted"], True)
            transactional.abort_transaction(DEADLINE_S)
        else:
            send(plain, step["records"], False)
    print(json.dumps({"records": out}))


def consume(args):
    consumer = Consumer(
        {
            **common(args),
            "client.id": "compaction-python",
            "group.id": f"{args['topic']}-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_uncommitted",
            "fetch.wait.max.ms": 100,
        }
    )
    records = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        consumer.assign([TopicPartition(args["topic"], 0, 0)])
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(records)} records before the deadline without reaching the end")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    break
                raise KafkaException(msg.error())
            value = msg.value()
            records.append([msg.offset(), msg.key().decode(), None if value is None else value.decode()])
    finally:
        consumer.close()
    print(json.dumps({"records": records}))


def main():
    args = json.loads(sys.argv[1])
    if args["mode"] == "produce":
        produce(args)
    elif args["mode"] == "consume":
        consume(args)
    else:
        raise ValueError(f"unknown mode {args['mode']}")


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # noqa: BLE001 - one line for the test to show
        print(f"compaction_client: {err}", file=sys.stderr)
        sys.exit(1)
