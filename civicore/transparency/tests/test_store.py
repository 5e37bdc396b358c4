"""The stored transparency log: the same roots and proofs as the in-memory log whatever the batch
sizes, leaf hashes anyone can recompute, refused input leaving no trace, a fixed number of queries
per append and per proof, and concurrent appends serialised into one consistent log."""

from __future__ import annotations

import hashlib
import threading

import pytest
from django.db import connection, transaction

from civicore.core.errors import NotFound, ValidationFailed
from civicore.transparency import merkle, selectors, services
from civicore.transparency.merkle import MemoryLog, verify_consistency, verify_inclusion
from civicore.transparency.models import LogEntry, LogState, Subtree, leaf_data

KINDS = ["issued", "revoked", "suspended", "reinstated", "reissued"]


def doc(number: int) -> str:
    return hashlib.sha256(f"document {number}".encode()).hexdigest()


def pairs(start: int, count: int) -> list[tuple[str, str]]:
    return [(KINDS[number % len(KINDS)], doc(number)) for number in range(start, start + count)]


def memory_log() -> MemoryLog:
    """The in-memory log over the stored entries' leaf data, in position order."""
    return MemoryLog(entry.leaf_data() for entry in LogEntry.objects.order_by("position"))


@pytest.mark.django_db
def test_batches_of_varied_sizes_give_the_in_memory_log_roots_and_proofs() -> None:
    total = 0
    for batch in [1, 1, 2, 3, 5, 8, 13, 1, 31, 32, 64, 7, 100, 33]:
        services.log_append(entries=pairs(total, batch))
        total += batch
        assert selectors.state() == (total, memory_log().root())

    reference = memory_log()
    assert reference.size == 301
    assert [entry.position for entry in LogEntry.objects.all()] == list(range(301))
    assert Subtree.objects.count() == sum(301 >> level for level in range((301).bit_length()))
    store = selectors.DatabaseStore()
    for size in [1, 2, 3, 7, 64, 100, 129, 256, 300, 301]:
        root = reference.root(size)
        assert selectors.root(size) == root
        for position in range(size):
            proof = selectors.inclusion(position, size)
            assert proof.proof == reference.inclusion_proof(position, size)
            assert verify_inclusion(proof.entry.computed_leaf_hash(), position, size, proof.proof, root)
        for old in range(0, size + 1, max(1, size // 17)):
            consistency = selectors.consistency(old, size)
            assert consistency == reference.consistency_proof(old, size)
            assert verify_consistency(old, size, reference.root(old), root, consistency)
    for position in range(301):
        assert selectors.inclusion(position).proof == reference.inclusion_proof(position)
    assert store.subtrees([(8, 0), (0, 300), (0, 0)]) == reference.subtrees([(8, 0), (0, 300), (0, 0)])


@pytest.mark.django_db
def test_leaf_hashes_are_recomputable_from_the_published_entry() -> None:
    entries = services.log_append(entries=pairs(0, 3))
    for stored in LogEntry.objects.all():
        assert bytes(stored.leaf_hash) == stored.computed_leaf_hash()
        assert bytes(stored.leaf_hash) == merkle.leaf_hash(
            leaf_data(stored.kind, stored.document_hash, stored.created_at)
        )
    first = entries[0]
    data = first.leaf_data()
    micros = int(first.created_at.timestamp()) * 1_000_000 + first.created_at.microsecond
    assert data == b"\x01\x06issued" + bytes.fromhex(doc(0)) + micros.to_bytes(8, "big")
    with pytest.raises(ValueError, match="timezone-aware"):
        leaf_data("issued", doc(0), first.created_at.replace(tzinfo=None))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (("granted", doc(1)), "unknown_entry_kind"),
        (("", doc(1)), "unknown_entry_kind"),
        (("issued", doc(1).upper()), "invalid_document_hash"),
        (("issued", doc(1)[:63]), "invalid_document_hash"),
        (("issued", doc(1) + "0"), "invalid_document_hash"),
        (("issued", doc(1)[:63] + "g"), "invalid_document_hash"),
        (("issued", doc(1) + "\n"), "invalid_document_hash"),
    ],
)
def test_a_bad_entry_is_refused_and_nothing_is_written(bad: tuple[str, str], code: str) -> None:
    services.log_append(entries=pairs(0, 5))
    before = selectors.state()
    with pytest.raises(ValidationFailed) as refused:
        services.log_append(entries=[*pairs(5, 3), bad])
    assert refused.value.code == code
    assert selectors.state() == before
    assert LogEntry.objects.count() == 5
    assert Subtree.objects.count() == 5 + 2 + 1


@pytest.mark.django_db
def test_a_rolled_back_transaction_leaves_the_log_unchanged() -> None:
    services.log_append(entries=pairs(0, 6))
    before = selectors.state()

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), transaction.atomic():
        services.log_append(entries=pairs(6, 10))
        assert selectors.state()[0] == 16
        raise Abandon
    assert selectors.state() == before
    assert LogEntry.objects.count() == 6
    services.log_append(entries=pairs(6, 10))
    assert selectors.state() == (16, memory_log().root())


@pytest.mark.django_db
def test_an_append_takes_the_same_queries_for_one_entry_and_for_five_hundred(
    django_assert_num_queries, django_assert_max_num_queries
) -> None:
    services.log_append(entries=pairs(0, 37))  # a log whose right edge has several subtrees
    with django_assert_max_num_queries(10) as one:
        services.log_append(entries=pairs(37, 1))
    if connection.vendor == "postgresql":
        with django_assert_num_queries(len(one.captured_queries)):
            services.log_append(entries=pairs(38, 500))
    else:
        # Django's SQLite backend cuts an INSERT at 999 variables: 199 entries or 333 subtrees.
        with django_assert_num_queries(len(one.captured_queries)):
            services.log_append(entries=pairs(38, 150))
        new_subtrees = sum((688 >> level) - (188 >> level) for level in range((688).bit_length()))
        extra_inserts = -(-500 // 199) - 1 + -(-new_subtrees // 333) - 1
        with django_assert_num_queries(len(one.captured_queries) + extra_inserts):
            services.log_append(entries=pairs(188, 500))


@pytest.mark.django_db
def test_proofs_take_at_most_three_queries(django_assert_max_num_queries) -> None:
    services.log_append(entries=pairs(0, 300))
    with django_assert_max_num_queries(3):
        proof = selectors.inclusion(150)
    assert len(proof.proof) == 9
    with django_assert_max_num_queries(3):
        selectors.inclusion(200, 257)
    with django_assert_max_num_queries(2):
        selectors.consistency(77, 300)


@pytest.mark.django_db
def test_proofs_outside_the_log_are_refused() -> None:
    with pytest.raises(NotFound):
        selectors.inclusion(0)
    assert selectors.state() == (0, merkle.EMPTY_ROOT)
    services.log_append(entries=pairs(0, 10))
    with pytest.raises(NotFound):
        selectors.inclusion(10)
    with pytest.raises(NotFound):
        selectors.inclusion(5, 5)
    with pytest.raises(ValidationFailed) as refused:
        selectors.inclusion(1, 11)
    assert refused.value.code == "tree_size_out_of_range"
    with pytest.raises(ValidationFailed):
        selectors.consistency(8, 4)
    with pytest.raises(LookupError):
        selectors.DatabaseStore().subtree(0, 10)
    assert services.log_append(entries=[]) == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no concurrent writers")
@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_make_one_consistent_log() -> None:
    batches = [pairs(1000 * worker + 100 * round_, 17 + worker) for worker in range(2) for round_ in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(6):
                services.log_append(entries=batches[worker * 6 + round_])
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    size, root = selectors.state()
    assert size == 6 * 17 + 6 * 18 == LogEntry.objects.count()
    assert [entry.position for entry in LogEntry.objects.all()] == list(range(size))
    assert root == memory_log().root()
    times = list(LogEntry.objects.values_list("created_at", flat=True))
    assert times == sorted(times)
    assert LogState.objects.count() == 1
