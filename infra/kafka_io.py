"""kafka-python clients with the settings this system relies on."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)


def _no_auto_create(cluster: Any) -> None:
    """Make the client's metadata requests ask the broker not to create the topics they name.

    kafka-python 3.0 accepts ``allow_auto_create_topics=False`` but builds its ``ClusterMetadata``
    without it, so every metadata request of a producer or subscribed consumer asks the broker to
    create a missing topic, and Tansu does, with its default 4 partitions. After the broker lost
    its data, a projection's consumer still subscribed (or the relay's producer) so re-created the
    relay's topic with 4 partitions before the relay re-created it with its own. The consumer had
    joined its group on the 4-partition topic; on the rejoin that followed, Tansu's SyncGroup
    answer carried that earlier assignment instead of the leader's new one, and the consumer was
    left assigned a partition that no longer existed, fetching nothing (the projection missed
    every event written after the loss). Only the relay creates the topic (``recreate_topic``).
    """
    config = getattr(cluster, "config", None)
    if isinstance(config, dict):
        config["allow_auto_create_topics"] = False


def producer(bootstrap: str) -> KafkaProducer:
    # acks=all and one request in flight: a retried batch can never overtake a later one, so
    # each partition keeps the log's order.
    client = KafkaProducer(
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
    _no_auto_create(getattr(client, "_metadata", None))
    return client


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
    client = KafkaConsumer(**options)
    _no_auto_create(getattr(client, "_cluster", None))
    return client


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


def _partition_count(admin: KafkaAdminClient, topic: str) -> int | None:
    """The topic's partitions as the broker describes them; None when it has no such topic."""
    for described in admin.describe_topics([topic]):
        if described.get("name") == topic and not described.get("error_code"):
            return len(described.get("partitions") or [])
    return None


def recreate_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 10.0) -> None:
    """Delete the topic (if present) and create it empty with ``partitions``, waiting for each
    step to show. A client that auto-creates topics (Tansu obliges any metadata request that asks)
    can create it again between the delete and the create, with the broker's default partitions:
    such a topic is deleted and created again, until it has ours or ``timeout_s`` has passed."""
    import time

    from kafka.errors import UnknownTopicOrPartitionError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if topic in admin.list_topics():
                with contextlib.suppress(UnknownTopicOrPartitionError):
                    admin.delete_topics([topic])
                while topic in admin.list_topics() and time.monotonic() < deadline:
                    time.sleep(0.05)
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([new_topic(topic, partitions)])
            found = _partition_count(admin, topic)
            if found == partitions:
                return
            if time.monotonic() >= deadline:
                raise TopicNotRecreated(f"topic {topic} has {found} partitions, not {partitions}")
            log.warning(
                "topic %s was created by another client with %s partitions; recreating it with %d",
                topic,
                found,
                partitions,
            )
    finally:
        admin.close()


class TopicNotRecreated(KafkaError):  # type: ignore[misc]
    """The topic could not be made to have the relay's partitions (another client keeps creating
    it); the relay retries after its back-off."""
