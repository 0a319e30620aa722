import json
import uuid

import pytest

from infra import cloudevents
from infra.settings import Settings, SettingsError


def relayed(state: bytes) -> cloudevents.RelayedEvent:
    return cloudevents.RelayedEvent(
        position=42,
        originator_id=uuid.uuid4(),
        originator_version=3,
        topic="domain.case:ReliefCase.Closed",
        state=state,
        epoch=2,
    )


def test_a_json_event_round_trips_as_a_structured_cloudevent() -> None:
    state = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05+00:00"},"a":1}'
    event = relayed(state)
    envelope = json.loads(cloudevents.encode(event, source="urn:test"))
    assert envelope["specversion"] == "1.0"
    assert envelope["id"] == f"{event.originator_id}/3"
    assert envelope["source"] == "urn:test"
    assert envelope["type"] == "domain.case:ReliefCase.Closed"
    assert envelope["subject"] == str(event.originator_id)
    assert envelope["time"] == "2026-01-02T03:04:05+00:00"
    assert envelope["datacontenttype"] == "application/json"
    assert envelope["position"] == 42 and envelope["relayepoch"] == 2
    assert cloudevents.decode(cloudevents.encode(event, source="urn:test")) == event


def test_a_binary_state_travels_as_data_base64() -> None:
    event = relayed(b"\x00\xffencrypted")
    envelope = json.loads(cloudevents.encode(event, source="urn:test"))
    assert "data" not in envelope and envelope["data_base64"]
    assert cloudevents.decode(cloudevents.encode(event, source="urn:test")) == event


def test_only_the_states_of_the_topics_asked_for_are_decoded() -> None:
    event = relayed(b"\x00\xffencrypted")
    value = cloudevents.encode(event, source="urn:test")
    assert cloudevents.decode(value, topics={event.topic}) == event
    skipped = cloudevents.decode(value, topics={"domain.other:Event"})
    assert skipped.state == b""
    assert skipped._replace(state=event.state) == event  # where it is in the log, all of it


def test_a_json_state_orjson_refuses_is_decoded_all_the_same() -> None:
    state = b'{"big":123456789012345678901234567890,"f":0.1}'  # beyond 64 bits
    event = relayed(state)
    decoded = cloudevents.decode(cloudevents.encode(event, source="urn:test"))
    assert json.loads(decoded.state) == json.loads(state)


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b"[1]",
        b'{"specversion":"0.3"}',
        b'{"specversion":"1.0"}',
        b'{"specversion":"1.0","type":1}',
    ],
)
def test_a_foreign_message_is_refused(value: bytes) -> None:
    with pytest.raises(cloudevents.MalformedCloudEvent):
        cloudevents.decode(value)


def test_settings_come_from_prefixed_environment_variables() -> None:
    settings = Settings.from_env(
        {
            "RELIEF_DATABASE_URL": "postgresql://db/relief",
            "RELIEF_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
            "RELIEF_HTTP_PORT": "9000",
            "RELIEF_PROJECTION_BATCH": "250",
            "RELIEF_PROJECTION_CATCH_UP_BATCH": "2000",
            "RELIEF_GROUP_COMMIT": "1",
            "DATABASE_URL": "ignored",
        }
    )
    assert settings.group_commit and not Settings.from_env({}).group_commit
    assert settings.database_url == "postgresql://db/relief"
    assert settings.kafka_bootstrap == "k1:9092,k2:9092"
    assert settings.http_port == 9000
    assert settings.projection_batch == 250
    assert settings.projection_catch_up_batch == 2000
    assert Settings.from_env({}).projection_catch_up_batch == 5000


def test_unset_settings_mean_the_embedded_defaults() -> None:
    settings = Settings.from_env({"RELIEF_DATABASE_URL": ""})
    assert settings.database_url is None and settings.kafka_bootstrap is None


@pytest.mark.parametrize("value", ["many", "0", "-5"])
def test_a_bad_number_is_a_clear_error(value: str) -> None:
    with pytest.raises(SettingsError, match="RELIEF_PROJECTION_BATCH"):
        Settings.from_env({"RELIEF_PROJECTION_BATCH": value})
