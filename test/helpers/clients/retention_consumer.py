"""confluent-kafka-python (librdkafka) group consumer for test/compat/retention-python.test.ts.

Run with Debian's interpreter, which has python3-confluent-kafka:

    /usr/bin/python3 retention_consumer.py '{"bootstrap": ..., "topic": ..., "groupId": ..., "count": 3}'

Joins the group with auto.offset.reset=earliest, reads until it has `count` records and has
committed past the last one, then prints {"records": [{"offset", "value"}, ...]}. Any
failure, including the deadline passing, exits 1 with the reason on stderr.
"""

import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

DEADLINE_S = 30


def main():
    args = json.loads(sys.argv[1])
    consumer = Consumer(
        {
            "bootstrap.servers": args["bootstrap"],
            "client.id": "retention-python",
            "broker.address.family": "v4",
            "group.id": args["groupId"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "socket.timeout.ms": 5000,
            "reconnect.backoff.max.ms": 500,
        }
    )
    records = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        consumer.subscribe([args["topic"]])
        while len(records) < args["count"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {len(records)} of {args['count']} records before the deadline")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            records.append({"offset": msg.offset(), "value": msg.value().decode()})
        last = records[-1]["offset"]
        consumer.commit(offsets=[TopicPartition(args["topic"], 0, last + 1)], asynchronous=False)
        # A short extra poll: anything read beyond `count` would show up in the result.
        extra = consumer.poll(1.0)
        if extra is not None and not extra.error():
            records.append({"offset": extra.offset(), "value": extra.value().decode()})
    finally:
        consumer.close()
    print(json.dumps({"records": records}))


if __name__ == "__main__":
    try:
        main()
    except Exception as err:  # noqa: BLE001 - one line for the test to show
        print(f"retention_consumer: {err}", file=sys.stderr)
        sys.exit(1)
