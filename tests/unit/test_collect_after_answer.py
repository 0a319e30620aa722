"""A serving API process runs the collections due after each answer, not inside a request."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from typing import Any

import pytest

from api.app import CollectAfterAnswer, collect_due


@pytest.fixture(autouse=True)
def serving_thresholds() -> Iterator[None]:
    """As in a serving process (``settle_heap``): the collector's own trigger far off."""
    before = gc.get_threshold()
    gc.collect()
    gc.set_threshold(1_000_000, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_collection_runs_only_once_enough_has_been_allocated() -> None:
    gc.collect()
    assert collect_due(young_every=1_000) is None  # nothing allocated yet
    kept = [[] for _ in range(2_000)]  # tracked containers, kept alive
    assert gc.get_count()[0] > 1_000
    assert collect_due(young_every=1_000) in (0, 1, 2)
    assert gc.get_count()[0] < 1_000
    del kept


def test_the_collection_due_runs_after_the_answer_is_sent() -> None:
    events: list[str] = []

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            events.append("collection")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        app.kept = [[] for _ in range(20_000)]  # type: ignore[attr-defined]  # past 10,000
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message: Any) -> None:
        events.append(message["type"])

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    gc.callbacks.append(watch)
    try:
        asyncio.run(CollectAfterAnswer(app)({"type": "http"}, receive, send))
    finally:
        gc.callbacks.remove(watch)
    assert events == ["http.response.start", "http.response.body", "collection"]
