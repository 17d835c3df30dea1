"""confluent-kafka-python (librdkafka) driver for test/compat/python.test.ts.

Run with Debian's interpreter, which has python3-confluent-kafka:

    /usr/bin/python3 rdkafka_client.py produce '{"bootstrap": ..., ...}'
    /usr/bin/python3 rdkafka_client.py consume '{"bootstrap": ..., ...}'

Every input is in the JSON argument; the result is one JSON object on stdout. Any failure,
including a deadline passing, exits 1 with the reason on stderr. Keys, values and header
values travel as UTF-8 strings (null for None).
"""

import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

DEADLINE_S = 30


def fail_fast(args):
    """librdkafka settings that turn a broker problem into a quick failure instead of a hang."""
    return {
        "bootstrap.servers": args["bootstrap"],
        "client.id": args.get("clientId", "compat-python"),
        "broker.address.family": "v4",
        "socket.timeout.ms": 5000,
        "socket.connection.setup.timeout.ms": 5000,
        "api.version.request.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 500,
    }


def text(b):
    return None if b is None else b.decode()


def produce(args):
    """Produces args["records"] ({partition, key, value, headers, timestamp}) in order, with
    args["compression"] and, when args["idempotent"], enable.idempotence."""
    conf = fail_fast(args)
    conf.update(
        {
            "acks": "all",
            "compression.type": args["compression"],
            "linger.ms": 100,
            "message.timeout.ms": 20000,
            "request.timeout.ms": 5000,
            "enable.idempotence": args.get("idempotent", False),
        }
    )
    producer = Producer(conf)
    # Learn the partition leaders first, so records do not wait on metadata and split batches.
    producer.list_topics(args["topic"], timeout=10)
    delivered = []
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append({"partition": msg.partition(), "offset": msg.offset(), "value": text(msg.value())})

    for r in args["records"]:
        producer.produce(
            args["topic"],
            value=r["value"].encode(),
            key=None if r["key"] is None else r["key"].encode(),
            partition=r["partition"],
            timestamp=r["timestamp"],
            headers=[(k, None if v is None else v.encode()) for k, v in r["headers"]],
            on_delivery=on_delivery,
        )
        producer.poll(0)
    deadline = time.time() + DEADLINE_S
    while len(delivered) + len(errors) < len(args["records"]):
        if time.time() > deadline:
            raise RuntimeError(f"{len(delivered)} of {len(args['records'])} delivery reports before the deadline")
        producer.poll(0.05)
    remaining = producer.flush(10)
    if remaining:
        raise RuntimeError(f"{remaining} messages still queued after flush")
    if errors:
        raise RuntimeError(f"delivery errors: {errors}")
    return {"delivered": delivered}


def record(msg):
    ts_type, ts = msg.timestamp()
    return {
        "partition": msg.partition(),
        "offset": msg.offset(),
        "key": text(msg.key()),
        "value": text(msg.value()),
        "headers": [[k, text(v)] for k, v in (msg.headers() or [])],
        "timestamp": ts,
        "timestampType": ts_type,
    }


def poll_records(consumer, count, what):
    """Polls until `count` records arrived; errors (other than partition EOF) fail the run."""
    out = []
    deadline = time.time() + DEADLINE_S
    while len(out) < count:
        if time.time() > deadline:
            raise RuntimeError(f"{what}: {len(out)} of {count} records before the deadline")
        msg = consumer.poll(0.1)
        if msg is None:
            continue
        if msg.error():
            raise KafkaException(msg.error())
        out.append(record(msg))
    return out


def consume(args):
    """Reads with assign/seek/offsets_for_times only: the group id is required by the client
    but never joined, and nothing is committed."""
    conf = fail_fast(args)
    conf.update(
        {
            "group.id": args["groupId"],
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "error",
            "fetch.wait.max.ms": 100,
            "check.crcs": True,
        }
    )
    consumer = Consumer(conf)
    topic = args["topic"]
    try:
        # Everything, from the beginning of each partition.
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in args["partitions"]])
        everything = poll_records(consumer, args["expect"], "assign from the beginning")

        # Seek one partition back and read it again from there.
        seek = args["seek"]
        consumer.seek(TopicPartition(topic, seek["partition"], seek["offset"]))
        after_seek = poll_records(consumer, seek["count"], "after seek")

        # Offsets by timestamp (ListOffsets), then read from the offset found for the first query.
        found = consumer.offsets_for_times([TopicPartition(topic, q["partition"], q["timestamp"]) for q in args["times"]], timeout=10)
        for tp in found:
            if tp.error is not None:
                raise KafkaException(tp.error)
        times = [{"partition": tp.partition, "offset": tp.offset} for tp in found]
        first = found[0]
        consumer.assign([TopicPartition(topic, first.partition, first.offset)])
        from_time = poll_records(consumer, args["fromTimeCount"], "from offsets_for_times")
        watermarks = [list(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)) for p in args["partitions"]]
        return {"everything": everything, "afterSeek": after_seek, "times": times, "fromTime": from_time, "watermarks": watermarks}
    finally:
        consumer.close()


def main():
    command, args = sys.argv[1], json.loads(sys.argv[2])
    result = {"produce": produce, "consume": consume}[command](args)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
