"""The public API and page of the transparency log: signed heads anyone can verify with the
published JWKS, proofs only to signed sizes, and clear 4xx codes for every bad request."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client
from joserfc import jws

from civicore.core import jose
from civicore.transparency import merkle, services
from civicore.transparency.tests.test_store import doc, memory_log, pairs

API = "/api/v1/transparency"


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@pytest.fixture
def log(db: Any) -> list[Any]:
    """A log of 300 entries with heads signed at 100 and at 300 entries."""
    services.log_append(entries=pairs(0, 100))
    first = services.tree_head_sign_now()
    services.log_append(entries=pairs(100, 200))
    second = services.tree_head_sign_now()
    return [first, second]


def get(client: Client, path: str, **params: Any) -> Any:
    return client.get(f"{API}{path}", params)


def test_the_latest_head_is_a_jws_verifiable_with_the_published_keys(client: Client, log: list[Any]) -> None:
    answer = get(client, "/tree-heads/latest")
    assert answer.status_code == 200
    body = answer.json()
    keys = client.get("/.well-known/jwks.json").json()
    token = jws.deserialize_compact(body["jws"], jose.verification_keys(), algorithms=["ES256"])
    assert token.headers()["typ"] == "tree-head+jwt"
    assert token.headers()["kid"] in {key["kid"] for key in keys["keys"]}
    payload = json.loads(token.payload)
    assert payload["size"] == body["size"] == 300
    assert base64.b64decode(payload["root"]) == memory_log().root()
    assert payload["log"] == body["log"]
    assert payload["timestamp"] == body["timestamp"] > log[0].timestamp


def test_heads_are_listed_newest_first_and_found_by_size(client: Client, log: list[Any]) -> None:
    listed = get(client, "/tree-heads", limit=1)
    assert [head["size"] for head in listed.json()["items"]] == [300]
    following = get(client, "/tree-heads", limit=1, cursor=listed.json()["next_cursor"]).json()
    assert [head["size"] for head in following["items"]] == [100]
    assert following["next_cursor"] is None
    assert [head["size"] for head in get(client, "/tree-heads", size=100).json()["items"]] == [100]
    missing = get(client, "/tree-heads", size=101)
    assert (missing.status_code, missing.json()["code"]) == (404, "tree_head_not_found")


def test_no_head_yet_is_a_404(client: Client, db: Any) -> None:
    answer = get(client, "/tree-heads/latest")
    assert (answer.status_code, answer.json()["code"]) == (404, "tree_head_not_found")


def test_a_consistency_proof_between_signed_heads_verifies(client: Client, log: list[Any]) -> None:
    body = get(client, "/proofs/consistency", first=100, second=300).json()
    proof = [base64.b64decode(item) for item in body["proof"]]
    merkle.check_consistency(100, 300, bytes(log[0].root), bytes(log[1].root), proof)
    assert get(client, "/proofs/consistency", first=300, second=300).json()["proof"] == []


def test_inclusion_proofs_by_position_and_by_document_hash(client: Client, log: list[Any]) -> None:
    by_position = get(client, "/proofs/inclusion", position=42, size=100).json()
    entry = by_position["entry"]
    assert (entry["position"], entry["document_hash"], by_position["size"]) == (42, doc(42), 100)
    proof = [base64.b64decode(item) for item in by_position["proof"]]
    merkle.check_inclusion(base64.b64decode(entry["leaf_hash"]), 42, 100, proof, bytes(log[0].root))

    by_hash = get(client, "/proofs/inclusion", hash=doc(250)).json()  # the latest head by default
    assert (by_hash["entry"]["position"], by_hash["size"]) == (250, 300)
    proof = [base64.b64decode(item) for item in by_hash["proof"]]
    leaf = base64.b64decode(by_hash["entry"]["leaf_hash"])
    merkle.check_inclusion(leaf, 250, 300, proof, bytes(log[1].root))
    kinds = get(client, "/proofs/inclusion", hash=doc(250), kind="revoked")
    assert (kinds.status_code, kinds.json()["code"]) == (404, "log_entry_not_found")  # 250 is "issued"
    later = get(client, "/proofs/inclusion", hash=doc(250), size=100)
    assert (later.status_code, later.json()["code"]) == (404, "log_entry_not_found")


def test_entries_by_range_carry_what_recomputes_their_leaf_hash(client: Client, log: list[Any]) -> None:
    body = get(client, "/entries", start=298, end=310).json()
    assert body["log_size"] == 300
    assert [entry["position"] for entry in body["entries"]] == [298, 299]
    for entry in body["entries"]:
        from datetime import datetime

        data = services._leaf_hashes(  # the published fields alone give the leaf hash
            [(entry["kind"], entry["document_hash"])], datetime.fromisoformat(entry["created_at"])
        )[0]
        assert b64(data) == entry["leaf_hash"]
    assert len(get(client, "/entries", start=0).json()["entries"]) == 300
    assert get(client, "/entries", start=300).json()["entries"] == []


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/tree-heads", {"size": -1}, 422, "invalid_request"),
        ("/tree-heads", {"size": "ten"}, 422, "invalid_request"),
        ("/tree-heads", {"size": 2**64}, 422, "invalid_request"),
        ("/tree-heads", {"size": 99}, 404, "tree_head_not_found"),
        ("/tree-heads", {"cursor": "forged"}, 422, "invalid_cursor"),
        ("/proofs/consistency", {"first": 300, "second": 100}, 422, "tree_size_out_of_range"),
        ("/proofs/consistency", {"first": 100, "second": 301}, 404, "tree_head_not_found"),
        ("/proofs/consistency", {"first": 50, "second": 300}, 404, "tree_head_not_found"),
        ("/proofs/consistency", {"first": -5, "second": 300}, 422, "invalid_request"),
        ("/proofs/consistency", {"first": "1e3", "second": 300}, 422, "invalid_request"),
        ("/proofs/consistency", {"first": 100}, 422, "invalid_request"),
        ("/proofs/consistency", {"first": 100, "second": 2**63}, 422, "invalid_request"),
        ("/proofs/inclusion", {}, 422, "entry_selector_required"),
        ("/proofs/inclusion", {"position": 1, "hash": doc(1)}, 422, "entry_selector_required"),
        ("/proofs/inclusion", {"position": 100, "size": 100}, 404, "log_entry_not_found"),
        ("/proofs/inclusion", {"position": 1, "size": 200}, 404, "tree_head_not_found"),
        ("/proofs/inclusion", {"position": 2**63 - 1}, 404, "log_entry_not_found"),
        ("/proofs/inclusion", {"hash": doc(1).upper()}, 422, "invalid_request"),
        ("/proofs/inclusion", {"hash": "'; DROP TABLE x; --"}, 422, "invalid_request"),
        ("/proofs/inclusion", {"hash": doc(1), "kind": "granted"}, 422, "invalid_request"),
        ("/proofs/inclusion", {"hash": doc(999)}, 404, "log_entry_not_found"),
        ("/entries", {"start": 10, "end": 5}, 422, "entry_range_out_of_range"),
        ("/entries", {"start": 301}, 422, "entry_range_out_of_range"),
        ("/entries", {"start": 0, "end": 1001}, 422, "entry_range_too_large"),
        ("/entries", {"start": -1}, 422, "invalid_request"),
        ("/entries", {"start": "x"}, 422, "invalid_request"),
        ("/entries", {"start": 2**70}, 422, "invalid_request"),
    ],
)
def test_bad_requests_get_a_clear_code(
    client: Client, log: list[Any], path: str, params: dict[str, Any], status: int, code: str
) -> None:
    answer = get(client, path, **params)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.content


def test_lists_take_a_fixed_number_of_queries(
    client: Client, log: list[Any], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(3):
        assert len(get(client, "/entries", start=0, end=1000).json()["entries"]) == 300
    with django_assert_max_num_queries(2):
        assert len(get(client, "/tree-heads").json()["items"]) == 2


def test_the_public_page_shows_the_latest_head_entries_and_how_to_witness(
    client: Client, log: list[Any]
) -> None:
    page = client.get("/transparency/")
    assert page.status_code == 200
    html = page.content.decode()
    assert log[1].root_hex in html
    assert log[1].signature in html
    assert doc(299) in html and doc(280) in html and doc(279) not in html  # 20 entries a page
    assert "civicore transparency witness http://testserver" in html
    assert "<caption>" in html and 'scope="col"' in html
    assert "/api/v1/transparency/tree-heads/latest" in html
    second = client.get("/transparency/", {"entries": 2}).content.decode()
    assert doc(279) in second and doc(299) not in second
    for odd in ("0", "-3", "abc", "99999999999"):
        assert client.get("/transparency/", {"entries": odd, "heads": odd}).status_code == 200


def test_the_public_page_before_anything_is_logged(client: Client, db: Any) -> None:
    page = client.get("/transparency/")  # Vietnamese by default
    assert page.status_code == 200
    assert "Chưa có đầu cây nào được ký." in page.content.decode()
    english = client.get("/transparency/", HTTP_ACCEPT_LANGUAGE="en")
    assert "No tree head has been signed yet." in english.content.decode()
