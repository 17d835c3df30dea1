"""confluent-kafka-python (librdkafka) consumer-group member for the group compatibility suites.

Run with Debian's interpreter, which has python3-confluent-kafka:

    /usr/bin/python3 groups-rdkafka.py '{"bootstrap": ..., "groupId": ..., ...}'

It subscribes to one topic and reports, one JSON object per line on stdout as they happen:
{"e": "assign"|"revoke"|"lost", "partitions": [...]}, {"e": "r", "p": partition, "o": offset,
"k": key, "v": value} for every record handed to it, and {"e": "closed"} once closed. With
"autoCommit" false it commits synchronously (commit(asynchronous=False)) after every batch it
processed. A line "stop" on stdin makes it close the consumer (a static member, with
"instanceId", leaves no LeaveGroup behind) and exit 0. Failures exit 1 with the reason on
stderr; so does the deadline passing.
"""

import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text(b):
    return None if b is None else b.decode()


def main():
    args = json.loads(sys.argv[1])
    conf = {
        "bootstrap.servers": args["bootstrap"],
        "client.id": args.get("clientId", "groups-python"),
        "group.id": args["groupId"],
        "partition.assignment.strategy": args["strategy"],
        "enable.auto.commit": bool(args["autoCommit"]),
        "auto.commit.interval.ms": 200,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.get("sessionTimeoutMs", 6000),
        "heartbeat.interval.ms": 300,
        "fetch.wait.max.ms": 100,
        "allow.auto.create.topics": False,
        "broker.address.family": "v4",
        "socket.timeout.ms": 5000,
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 500,
    }
    if args.get("instanceId"):
        conf["group.instance.id"] = args["instanceId"]
    consumer = Consumer(conf)

    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()

    def partitions(tps):
        return sorted(tp.partition for tp in tps)

    consumer.subscribe(
        [args["topic"]],
        on_assign=lambda c, tps: emit({"e": "assign", "partitions": partitions(tps)}),
        on_revoke=lambda c, tps: emit({"e": "revoke", "partitions": partitions(tps)}),
        on_lost=lambda c, tps: emit({"e": "lost", "partitions": partitions(tps)}),
    )
    deadline = time.time() + args.get("deadlineS", 60)
    while not stop.is_set():
        if time.time() > deadline:
            raise RuntimeError("deadline passed before the harness said stop")
        msgs = consumer.consume(num_messages=200, timeout=0.1)
        processed = False
        for msg in msgs:
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            emit({"e": "r", "p": msg.partition(), "o": msg.offset(), "k": text(msg.key()), "v": text(msg.value())})
            processed = True
        if processed and not args["autoCommit"]:
            try:
                consumer.commit(asynchronous=False)
            except KafkaException as e:
                # Nothing stored to commit (e.g. right after a rebalance) is not a failure.
                if e.args[0].code() != KafkaError._NO_OFFSET:
                    raise
    consumer.close()
    emit({"e": "closed"})


if __name__ == "__main__":
    main()
