"""confluent-kafka-python (librdkafka) zombie fencing driver for test/txn/fencing.test.ts. Run
with Debian's interpreter, which has python3-confluent-kafka:

    /usr/bin/python3 txn-fencing.py '{"bootstrap": ..., "topic": ..., "transactionalId": ...}'

Two producers with one transactional id. The first begins a transaction and writes
"zombie-before" to partition 0; the second calls init_transactions (fencing the first) and
then writes and commits "current-0" and "current-1". Meanwhile the fenced first producer
tries to write "zombie-after" and to commit. Prints one JSON object: the error the zombie's
commit raised (name, fatal flag), the errors of its delivery reports, and whether the
current producer's commit succeeded. Exits 1 (reason on stderr) on anything unexpected.
"""

import json
import sys

from confluent_kafka import KafkaException, Producer


def producer(args):
    return Producer(
        {
            "bootstrap.servers": args["bootstrap"],
            "client.id": "txn-fencing-python",
            "broker.address.family": "v4",
            "socket.timeout.ms": 5000,
            "reconnect.backoff.max.ms": 500,
            "transactional.id": args["transactionalId"],
            "transaction.timeout.ms": 10000,
            "message.timeout.ms": 10000,
        }
    )


def main():
    args = json.loads(sys.argv[1])
    topic = args["topic"]
    delivery_errors = []

    def report(err, msg):
        if err is not None:
            delivery_errors.append(err.name())

    zombie = producer(args)
    zombie.init_transactions(30)
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie-before", partition=0, on_delivery=report)
    if zombie.flush(10) != 0:
        raise RuntimeError("the zombie's first record was not delivered")

    current = producer(args)
    current.init_transactions(30)

    zombie_error = None
    try:
        zombie.produce(topic, value=b"zombie-after", partition=0, on_delivery=report)
        zombie.flush(10)
        zombie.commit_transaction(10)
    except KafkaException as e:
        err = e.args[0]
        zombie_error = {"name": err.name(), "fatal": err.fatal()}

    current.begin_transaction()
    current.produce(topic, value=b"current-0", partition=0)
    current.produce(topic, value=b"current-1", partition=0)
    current.commit_transaction(30)
    sys.stdout.write(json.dumps({"zombieError": zombie_error, "deliveryErrors": delivery_errors, "currentCommitted": True}) + "\n")


if __name__ == "__main__":
    main()
