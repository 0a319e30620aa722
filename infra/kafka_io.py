"""kafka-python clients with the settings this system relies on."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


def producer(bootstrap: str) -> KafkaProducer:
    # acks=all and one request in flight: a retried batch can never overtake a later one, so
    # each partition keeps the log's order.
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        retries=3,
        max_in_flight_requests_per_connection=1,
        linger_ms=2,
        request_timeout_ms=5000,
        max_block_ms=5000,
        reconnect_backoff_max_ms=1000,
        allow_auto_create_topics=False,  # only the relay creates the topic, with its partitions
    )


def consumer(bootstrap: str, *, group_id: str | None, **extra: Any) -> KafkaConsumer:
    # Short rebalance settings: the embedded broker otherwise takes ~20 s per group join.
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_interval_ms": 5000 if group_id else 300000,
        "session_timeout_ms": 6000,
        "heartbeat_interval_ms": 1000,
        "request_timeout_ms": 7000,
        "reconnect_backoff_max_ms": 1000,
        "allow_auto_create_topics": False,
    }
    options.update(extra)
    return KafkaConsumer(**options)


#: The topic is a copy of the whole log: keep every record (a consumer may start from 0).
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}


def new_topic(topic: str, partitions: int) -> NewTopic:
    return NewTopic(topic, partitions, 1, topic_configs=TOPIC_CONFIG)


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> bool:
    """Create the topic if missing; True when it was created now."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        if topic in admin.list_topics():
            return False
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([new_topic(topic, partitions)])
            log.info("created topic %s with %d partitions", topic, partitions)
            return True
        return False
    finally:
        admin.close()


def recreate_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 10.0) -> None:
    """Delete the topic (if present) and create it empty, waiting for each step to show."""
    import time

    from kafka.errors import UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        if topic in admin.list_topics():
            with contextlib.suppress(UnknownTopicOrPartitionError):
                admin.delete_topics([topic])
            deadline = time.monotonic() + timeout_s
            while topic in admin.list_topics() and time.monotonic() < deadline:
                time.sleep(0.05)
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([new_topic(topic, partitions)])
    finally:
        admin.close()
