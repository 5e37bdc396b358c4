"""Signed tree heads: signed when the log has grown and hourly otherwise, with timestamps that
only increase and a payload that matches the log."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jws

from civicore.core import jose
from civicore.transparency import services, tasks
from civicore.transparency.models import TreeHead
from civicore.transparency.tests.test_store import memory_log, pairs


@pytest.mark.django_db
def test_a_head_is_signed_when_the_log_grew_and_otherwise_hourly(monkeypatch: pytest.MonkeyPatch) -> None:
    first = services.tree_head_sign_if_due()
    assert first is not None and first.size == 0  # the empty log's head: the log exists
    assert services.tree_head_sign_if_due() is None
    services.log_append(entries=pairs(0, 7))
    tasks.sign_tree_head()
    grown = TreeHead.objects.first()
    assert grown is not None and grown.size == 7 and bytes(grown.root) == memory_log().root()
    assert services.tree_head_sign_if_due() is None
    later = services.time.time_ns() + 3601 * 10**9
    monkeypatch.setattr(services.time, "time_ns", lambda: later)
    alive = services.tree_head_sign_if_due()
    assert alive is not None and alive.size == 7 and alive.timestamp > grown.timestamp


@pytest.mark.django_db
def test_the_stored_jws_is_the_signed_payload(settings: Any) -> None:
    settings.SITE_URL = "https://dichvucong.example.gov.vn"
    services.log_append(entries=pairs(0, 5))
    head = services.tree_head_sign_now()
    token = jws.deserialize_compact(head.jws, jose.verification_keys(), algorithms=["ES256"])
    assert token.headers() == {"alg": "ES256", "kid": head.kid, "typ": "tree-head+jwt"}
    assert json.loads(token.payload) == {
        "log": "https://dichvucong.example.gov.vn",
        "size": 5,
        "root": base64.b64encode(memory_log().root()).decode(),
        "timestamp": head.timestamp,
    }


@pytest.mark.django_db
def test_timestamps_only_increase_even_if_the_clock_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    first = services.tree_head_sign_now()
    monkeypatch.setattr(services.time, "time_ns", lambda: 0)
    second = services.tree_head_sign_now()
    assert second.timestamp == first.timestamp + 1
