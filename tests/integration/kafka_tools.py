"""Test tools for Kafka: read a whole topic."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from infra import cloudevents


def read_topic(
    bootstrap: str, topic: str, *, quiet_s: float = 1.0, timeout_s: float = 30.0
) -> list[tuple[int, int, Any, cloudevents.RelayedEvent]]:
    """Every record of the topic: (partition, offset, key, decoded CloudEvent)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        records = []
        deadline = time.monotonic() + timeout_s
        last_seen = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_seen < quiet_s:
            for batch in consumer.poll(timeout_ms=200).values():
                for record in batch:
                    records.append(
                        (
                            record.partition,
                            record.offset,
                            record.key,
                            cloudevents.decode(record.value),
                        )
                    )
                    last_seen = time.monotonic()
        return records
    finally:
        consumer.close()


def read_raw(
    bootstrap: str, topic: str, *, quiet_s: float = 1.0, timeout_s: float = 30.0
) -> list[bytes]:
    """The values of every record of a topic (for topics that carry other documents)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        consumer.seek_to_beginning()
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        last_seen = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last_seen < quiet_s:
            for batch in consumer.poll(timeout_ms=200).values():
                values += [record.value for record in batch]
                last_seen = time.monotonic()
        return values
    finally:
        consumer.close()


def topic_partitions(bootstrap: str, topic: str) -> int | None:
    """How many partitions the broker says the topic has; None when it has no such topic."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        if topic not in admin.list_topics():
            return None
        (described,) = admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        admin.close()
