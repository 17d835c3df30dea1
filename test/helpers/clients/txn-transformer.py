"""confluent-kafka-python (librdkafka) consume-transform-produce worker for
test/txn/consume-transform-produce.test.ts. Run with Debian's interpreter, which has
python3-confluent-kafka:

    /usr/bin/python3 txn-transformer.py '{"bootstrap": ..., "input": ..., "output": ...,
        "groupId": ..., "transactionalId": ..., "chunk": N, "pauseMs": M, "deadlineS": S}'

Consumes `input` in group `groupId` (isolation.level read_committed, no auto-commit) and, per
poll of at most N records, in one transaction: writes "out:<value>" with the same key to the
same partition of `output`, pauses M ms (so that a kill often lands inside an open
transaction), adds the consumed positions with send_offsets_to_transaction (KIP-447: with the
consumer's group metadata) and commits. Reports {"e": "ready"} once init_transactions fenced
any previous instance, and {"e": "committed", "n": records} per committed transaction, one
JSON object per line. "stop" on stdin closes and exits 0; any failure exits 1 with the reason
on stderr.
"""

import json
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def common(args):
    return {
        "bootstrap.servers": args["bootstrap"],
        "broker.address.family": "v4",
        "socket.timeout.ms": 5000,
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 500,
    }


def main():
    args = json.loads(sys.argv[1])
    deadline = time.time() + args["deadlineS"]
    producer_conf = common(args)
    producer_conf.update(
        {
            "client.id": "txn-transformer-python",
            "transactional.id": args["transactionalId"],
            "transaction.timeout.ms": 10000,
            "linger.ms": 5,
        }
    )
    producer = Producer(producer_conf)
    # Fences a previous instance and settles its transaction before any offset is read.
    producer.init_transactions(30)
    emit({"e": "ready"})

    consumer_conf = common(args)
    consumer_conf.update(
        {
            "client.id": "txn-transformer-python",
            "group.id": args["groupId"],
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 3000,
            "heartbeat.interval.ms": 300,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer = Consumer(consumer_conf)
    consumer.subscribe([args["input"]])

    stop = threading.Event()

    def read_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()

    while not stop.is_set():
        if time.time() > deadline:
            raise RuntimeError("deadline passed before the harness said stop")
        msgs = consumer.consume(num_messages=args["chunk"], timeout=0.1)
        if not msgs:
            continue
        for m in msgs:
            if m.error():
                raise KafkaException(m.error())
        producer.begin_transaction()
        next_offsets = {}
        for m in msgs:
            producer.produce(args["output"], key=m.key(), value=b"out:" + m.value(), partition=m.partition())
            next_offsets[m.partition()] = m.offset() + 1
        time.sleep(args["pauseMs"] / 1000)
        offsets = [TopicPartition(args["input"], p, o) for p, o in sorted(next_offsets.items())]
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        emit({"e": "committed", "n": len(msgs)})
    consumer.close()
    emit({"e": "closed"})


if __name__ == "__main__":
    main()
