"""The Kafka relay against a real broker: CloudEvents, order, outages and a broker that forgets."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from eventsourcing.persistence import StoredEvent
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError

from domain.commands.cases import CloseCase
from infra import kafka_io
from infra.embedded_kafka import EmbeddedKafka
from infra.relay import KafkaRelay
from infra.runtime import Runtime
from tests.factories import approver
from tests.integration.helpers import relay_for, write_history
from tests.integration.kafka_tools import read_topic, topic_partitions
from tests.scenario import application

pytestmark = pytest.mark.integration


def publish_all(relay: KafkaRelay) -> None:
    while relay.run_once():
        pass


def assert_topic_holds_the_log(runtime: Runtime, bootstrap: str) -> list:
    """Every stored event is on the topic, keyed by aggregate, each case's events in order."""
    records = read_topic(bootstrap, runtime.settings.kafka_topic)
    stored = runtime.ledger.recorder.select_notifications(start=None, limit=100000)
    on_topic = {(e.originator_id, e.originator_version) for _, _, _, e in records}
    assert {(n.originator_id, n.originator_version) for n in stored} <= on_topic
    by_case: dict = defaultdict(list)
    partitions_of_case: dict = defaultdict(set)
    for partition, _offset, key, event in sorted(records, key=lambda r: (r[0], r[1])):
        assert key == str(event.originator_id).encode()
        by_case[event.originator_id].append(event.originator_version)
        partitions_of_case[event.originator_id].add(partition)
    for case_id, versions in by_case.items():
        assert len(partitions_of_case[case_id]) == 1, "one case, one partition"
        assert versions == sorted(versions), f"case {case_id} out of order: {versions}"
    positions = {(n.originator_id, n.originator_version): n.id for n in stored}
    for _, _, _, event in records:
        assert event.position == positions[(event.originator_id, event.originator_version)]
    return records


def test_every_committed_event_is_published_as_a_cloudevent(
    runtime: Runtime, kafka_broker: EmbeddedKafka
) -> None:
    write_history(runtime, 40)
    relay = relay_for(runtime, kafka_broker.bootstrap)
    publish_all(relay)
    records = assert_topic_holds_the_log(runtime, kafka_broker.bootstrap)
    assert len(records) == runtime.head_position()  # no broker trouble, so no duplicates
    first = next(r[3] for r in records if r[3].topic.endswith("ApplicationReceived"))
    assert first.topic == "domain.case:ReliefCase.ApplicationReceived"
    assert b"clerk-1" not in first.state  # the relay ships the sealed bytes, never clear text
    event = runtime.ledger.mapper.to_domain_event(
        StoredEvent(first.originator_id, first.originator_version, first.topic, first.state)
    )
    assert event.provenance.actor.id == "clerk-1"
    assert relay.load_state().position == runtime.head_position()


def _run_relay(relay: KafkaRelay) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), kwargs={"idle_wait_s": 0.1})
    thread.start()
    return stop, thread


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _open_some(runtime: Runtime, n: int) -> None:
    for _ in range(n):
        case = application(runtime)
        runtime.services.cases.close_case(
            CloseCase(case_id=case.id, reason_code="voluntary", provenance=approver())
        )


def test_broker_restarted_empty_mid_run_the_relay_republishes_everything(
    runtime: Runtime, own_broker: EmbeddedKafka
) -> None:
    relay = relay_for(runtime, own_broker.bootstrap)
    stop, thread = _run_relay(relay)
    try:
        _open_some(runtime, 30)
        _wait_for(lambda: relay.load_state().position == runtime.head_position())
        own_broker.stop()
        _open_some(runtime, 20)  # commands keep succeeding while the broker is down
        time.sleep(1.0)
        own_broker.start()  # same port, empty memory
        _open_some(runtime, 10)
        _wait_for(
            lambda: (
                relay.load_state().epoch == 2
                and relay.load_state().position == runtime.head_position()
            )
        )
    finally:
        stop.set()
        thread.join(30)
    records = assert_topic_holds_the_log(runtime, own_broker.bootstrap)
    assert len(records) >= runtime.head_position()
    assert {e.epoch for _, _, _, e in records} == {2}  # the forgotten copy was replaced whole


def test_our_kafka_clients_never_have_the_broker_create_a_topic(
    own_broker: EmbeddedKafka,
) -> None:
    """The embedded broker creates any topic a metadata request asks for (4 partitions);
    kafka-python 3.0 asks although told not to. After a broker lost its data, a consumer still
    subscribed or a producer still running would recreate the relay's topic behind its back."""
    bootstrap = own_broker.bootstrap
    plain = KafkaConsumer(bootstrap_servers=bootstrap, group_id="plain")
    try:
        plain.subscribe(["t.plain"])
        plain.poll(timeout_ms=2000)
    finally:
        plain.close()
    assert topic_partitions(bootstrap, "t.plain") == 4  # the hazard is real on this broker

    consumer = kafka_io.consumer(bootstrap, group_id="ours")
    try:
        consumer.subscribe(["t.consumed"])
        for _ in range(4):
            consumer.poll(timeout_ms=500)
    finally:
        consumer.close()
    producer = kafka_io.producer(bootstrap)
    try:
        with pytest.raises(KafkaTimeoutError):
            producer.send("t.produced", b"x").get(timeout=10)
    finally:
        producer.close(timeout=1)
    assert topic_partitions(bootstrap, "t.consumed") is None
    assert topic_partitions(bootstrap, "t.produced") is None


def test_a_topic_another_client_created_after_the_loss_is_replaced_and_republished(
    runtime: Runtime, own_broker: EmbeddedKafka
) -> None:
    """A broker that lost the topic, then had it created by another client (the broker's
    default partitions) and written to: not the relay's copy, however full its partitions."""
    relay = relay_for(runtime, own_broker.bootstrap)
    _open_some(runtime, 10)
    publish_all(relay)
    # More records in every partition than the relay wrote there: no partition looks emptied,
    # and the relay's next acknowledgements come with offsets above those it saw.
    written = max(relay.load_state().partition_offsets.values())
    relay._drop_producer()
    own_broker.restart()  # and the relay with it: a new process, its state in PostgreSQL
    topic = runtime.settings.kafka_topic
    foreign = KafkaProducer(bootstrap_servers=own_broker.bootstrap)  # library defaults
    try:
        for partition in range(4):
            for _ in range(written + 1):
                foreign.send(topic, b"not a cloudevent", partition=partition)
        foreign.flush(timeout=30)
    finally:
        foreign.close(timeout=1)
    assert topic_partitions(own_broker.bootstrap, topic) == 4
    relay = relay_for(runtime, own_broker.bootstrap)
    _open_some(runtime, 5)
    deadline = time.monotonic() + 60
    while relay.load_state().position < runtime.head_position():
        try:
            relay.run_once()
        except Exception:
            relay._drop_producer()  # the old producer's broker is gone
            time.sleep(0.2)
        assert time.monotonic() < deadline, "timed out"
    assert relay.load_state().epoch == 2
    assert topic_partitions(own_broker.bootstrap, topic) == 3
    records = assert_topic_holds_the_log(runtime, own_broker.bootstrap)
    assert {e.epoch for _, _, _, e in records} == {2}


def test_broker_unresponsive_then_back_with_its_data_the_relay_catches_up(
    runtime: Runtime, own_broker: EmbeddedKafka
) -> None:
    relay = relay_for(runtime, own_broker.bootstrap)
    stop, thread = _run_relay(relay)
    try:
        _open_some(runtime, 20)
        _wait_for(lambda: relay.load_state().position == runtime.head_position())
        own_broker.freeze()
        try:
            _open_some(runtime, 20)  # commands keep succeeding
            time.sleep(3.0)
            assert relay.load_state().position < runtime.head_position()
        finally:
            own_broker.thaw()
        _wait_for(lambda: relay.load_state().position == runtime.head_position())
        assert relay.load_state().epoch == 1  # the broker kept its data: no republish
    finally:
        stop.set()
        thread.join(30)
    assert_topic_holds_the_log(runtime, own_broker.bootstrap)


def test_only_one_relay_publishes_at_a_time(runtime: Runtime, kafka_broker: EmbeddedKafka) -> None:
    first, second = (
        relay_for(runtime, kafka_broker.bootstrap),
        relay_for(runtime, kafka_broker.bootstrap),
    )
    stop_a, a = _run_relay(first)
    stop_b, b = _run_relay(second)
    try:
        _open_some(runtime, 15)
        _wait_for(lambda: first.load_state().position == runtime.head_position())
    finally:
        stop_a.set()
        stop_b.set()
        a.join(30)
        b.join(30)
    assert sorted((first.published, second.published))[0] == 0
    records = assert_topic_holds_the_log(runtime, kafka_broker.bootstrap)
    assert len(records) == runtime.head_position()


def test_checkpoints_are_republished_with_the_events_after_the_broker_forgets(
    runtime: Runtime, own_broker: EmbeddedKafka
) -> None:
    """Every restart of the broker loses both topics; each time the relay puts back the events
    and, after them, every signed checkpoint, so a witness reading Kafka sees them all."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from infra.audit_witness import check_extension, fetch_kafka
    from infra.checkpoints import raw_public_key, sign_checkpoint
    from infra.sealing import seal_of

    key = Ed25519PrivateKey.generate()
    relay = relay_for(runtime, own_broker.bootstrap)
    stop, thread = _run_relay(relay)
    signed = 0

    def caught_up() -> bool:
        state = relay.load_state()
        return state.position == runtime.head_position() and state.checkpoint_sequence == signed

    try:
        for restart in range(3):
            for _ in range(3):
                _open_some(runtime, 2)
                checkpoint = sign_checkpoint(runtime.pool, key, seal_of(runtime.ledger)).checkpoint
                assert checkpoint is not None
                signed = checkpoint.sequence
            _wait_for(caught_up)
            own_broker.stop()
            own_broker.start()  # same port, empty memory
            _wait_for(lambda restart=restart: relay.load_state().epoch == restart + 2)
        _wait_for(caught_up)
    finally:
        stop.set()
        thread.join(30)
    on_kafka = fetch_kafka(own_broker.bootstrap, relay.checkpoint_topic)
    assert [c.sequence for c in on_kafka] == list(range(1, signed + 1))
    report = check_extension([], on_kafka, raw_public_key(key.public_key()))
    assert report.ok and len(report.new) == signed == 9
