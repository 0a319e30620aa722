"""Reading stored events with orjson (infra.codec.FastJSONTranscoder) gives what the library's
JSON transcoder gives, value for value and type for type, and its errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import (
    JSONTranscoder,
    MapperDeserialisationError,
    Notification,
    TranscodingNotRegisteredError,
)
from eventsourcing.utils import Environment

from domain.case import HomeVisit, IncomeItem, MeansTest, ReliefCase
from domain.provenance import Actor, Provenance, Role
from infra.codec import FastJSONTranscoder, register_transcodings
from infra.sealing import PlaceBoundCipher, PlaceBoundMapper


def transcoders() -> tuple[JSONTranscoder, FastJSONTranscoder]:
    library, fast = JSONTranscoder(), FastJSONTranscoder()
    register_transcodings(library)
    register_transcodings(fast)
    return library, fast


def typed(value: Any) -> Any:
    """The value with the type of every part, to compare types as well as values."""
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return (type(value), [typed(item) for item in value])
    return (type(value), value)


def test_the_same_values_as_the_library() -> None:
    library, fast = transcoders()
    role = next(iter(Role))
    state = {
        "timestamp": dt.datetime(2026, 11, 30, 3, 4, 5, 6, tzinfo=dt.UTC),
        "on": dt.date(2026, 2, 28),
        "amount": Decimal("682.10"),
        "case_id": uuid4(),
        "provenance": Provenance(Actor("a|b", role, "440281", None), "原因", None),
        "means_test": MeansTest(
            income_items=(IncomeItem("工资", Decimal("1200.50")),),
            assets=(),
            household_size=3,
            home_visit=HomeVisit(dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC), "440281100200", "v"),
        ),
        "ids": [uuid4(), {"nested": [Decimal("1"), None, True, 1.5, "文本"]}],
        "plain": {"_type_": "not a value, three keys", "_data_": 1, "x": 2},
        "big": 2**80,
        "bigs": [-(2**70), 2**64 - 1, -(2**63), 1e300],
        "empty": {},
    }
    data = library.encode(state)
    assert typed(fast.decode(data)) == typed(library.decode(data))
    assert fast.decode(data) == state | {"ids": [state["ids"][0], state["ids"][1]]}
    for document in (b"[1, 2]", b'"text"', b"null", b'{"x": NaN}'):
        assert typed(fast.decode(document)) == typed(library.decode(document)) or (
            document == b'{"x": NaN}'
            and str(fast.decode(document)) == str(library.decode(document))
        )


def test_an_unknown_value_type_is_refused_as_the_library_refuses_it() -> None:
    library, fast = transcoders()
    data = b'{"v": {"_type_": "no_such_type", "_data_": 1}}'
    with pytest.raises(TranscodingNotRegisteredError):
        library.decode(data)
    with pytest.raises(TranscodingNotRegisteredError):
        fast.decode(data)


def test_ids_read_through_the_cache_are_the_ids_written() -> None:
    library, fast = transcoders()
    ids = [uuid4() for _ in range(50)]
    data = library.encode({"ids": ids + ids})
    assert fast.decode(data)["ids"] == ids + ids
    assert all(type(i) is UUID for i in fast.decode(data)["ids"])


def test_a_document_read_for_some_fields_holds_those_and_refuses_the_others() -> None:
    library, fast = transcoders()
    case_id = uuid4()
    data = library.encode(
        {"case_id": case_id, "amount": Decimal("1.5"), "contract_id": None, "on": dt.date.today()}
    )
    read = fast.decode_fields(data, frozenset({"case_id", "contract_id", "absent"}))
    assert read["case_id"] == case_id and read["contract_id"] is None
    assert set(read) == {"case_id", "contract_id", "amount", "on"}  # the keys all stay
    with pytest.raises(AttributeError):
        bool(read["amount"])  # any use of a field left undecoded fails, never passes
    with pytest.raises(AttributeError):
        f"{read['on']}"
    with pytest.raises(AttributeError):
        {read["on"]}
    assert repr(read["amount"]) == "UNDECODED"


def sealed_mapper() -> PlaceBoundMapper:
    fast = FastJSONTranscoder()
    register_transcodings(fast)
    key = "dGVzdC1jaXBoZXIta2V5LW9mLXRoZS10ZXN0LXN1aXQ="
    return PlaceBoundMapper(fast, cipher=PlaceBoundCipher(Environment(env={"CIPHER_KEY": key})))


def notification(position: int, oid: UUID, version: int, topic: str, state: bytes) -> Any:
    return Notification(
        id=position, originator_id=oid, originator_version=version, topic=topic, state=state
    )


def test_an_event_read_from_its_row_is_the_event_the_library_reads() -> None:
    mapper = sealed_mapper()
    role = next(iter(Role))
    event = ReliefCase.PaymentRecorded(
        originator_id=uuid4(),
        originator_version=4,
        timestamp=dt.datetime(2026, 11, 30, 3, 4, 5, tzinfo=dt.UTC),
        period="2026-10",
        amount=Decimal("221.00"),
        provenance=Provenance(Actor("a", role, "440281", None), None, None),
    )
    stored = mapper.to_stored_event(event)
    row = (9, stored.originator_id, stored.originator_version, stored.topic, stored.state)
    library = mapper.to_domain_event(notification(*row))
    read = mapper.event_at(*row)
    assert type(read) is type(library) and vars(read) == vars(library) == vars(event)
    some = mapper.event_at(*row, frozenset({"timestamp"}))
    assert type(some) is type(event) and some.timestamp == event.timestamp
    assert some.originator_id == event.originator_id and some.originator_version == 4
    with pytest.raises(AttributeError):
        str(some.amount)
    # Sealed for another place (or tampered): refused as the library's way refuses it.
    with pytest.raises(MapperDeserialisationError) as refused:
        mapper.event_at(9, row[1], 5, row[3], row[4])
    with pytest.raises(MapperDeserialisationError) as library_refused:
        mapper.to_domain_event(notification(9, row[1], 5, row[3], row[4]))
    assert str(refused.value) == str(library_refused.value)
