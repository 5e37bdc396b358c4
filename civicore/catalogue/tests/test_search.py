from __future__ import annotations

import unicodedata

import pytest

from civicore.catalogue.search import normalise, query_words
from civicore.catalogue.selectors import procedure_search, service_search


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đăng ký khai sinh", "dang ky khai sinh"),
        ("  ĐĂNG   KÝ\tTHƯỜNG TRÚ \n", "dang ky thuong tru"),
        ("Phòng Kinh tế xã An Bình", "phong kinh te xa an binh"),
        ("Birth Registration", "birth registration"),
        ("", ""),
    ],
)
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_normalise_treats_composed_and_decomposed_input_alike():
    composed = "Nghĩa vụ quân sự"
    assert normalise(unicodedata.normalize("NFD", composed)) == normalise(composed) == "nghia vu quan su"


def test_query_words_drop_punctuation_and_cap_length():
    assert query_words("Khai sinh, 'OR 1=1 --") == ["khai", "sinh", "or", "1", "--"]
    assert "\x00" not in "".join(query_words("khai\x00sinh"))
    assert len("".join(query_words("a" * 10_000))) <= 200


def codes(qs):
    return [item.code for item in qs]


@pytest.mark.parametrize(
    "q",
    [
        "dang ky khai sinh",
        "Đăng ký khai sinh",
        "ĐĂNG KÝ KHAI SINH",
        "birth registration",
        "khai sinh birth",
        "  sinh  ",
    ],
)
def test_service_search_finds_birth_registration(catalogue, q):
    assert "birth-registration" in codes(service_search(q=q))


def test_every_word_must_match(catalogue):
    assert codes(service_search(q="khai sinh xay dung")) == []
    assert codes(service_search(q="giay phep xay dung")) == ["small-house-construction-permit"]


def test_service_search_matches_agency_names(catalogue):
    assert codes(service_search(q="commune police")) == ["permanent-residence-registration"]
    assert codes(service_search(q="ban chi huy quan su")) == ["military-service-registration"]
    assert codes(service_search(q="Parks Management")) == ["park-event-permit"]


def test_empty_query_lists_every_online_service(catalogue):
    assert len(codes(service_search(q=""))) == 6


def test_procedure_search_without_diacritics(catalogue):
    assert codes(procedure_search(q="dang ky nghia vu quan su lan dau")) == ["1.013133"]
    assert codes(procedure_search(q="đăng ký nghĩa vụ quân sự lần đầu")) == ["1.013133"]
    assert "1.013133" in codes(procedure_search(q="1.013133"))


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "'; DROP TABLE catalogue_service; --",
        '"%_\\',
        "100%",
        "a" * 20_000,
        "khai\x00sinh",
        "🚀 đăng ký 한국어 العربية",
        "<script>alert(1)</script>",
    ],
)
def test_hostile_queries_do_not_error(catalogue, q):
    list(service_search(q=q))
    list(procedure_search(q=q))
    from civicore.catalogue.models import Procedure

    assert Procedure.objects.count() == 207


def test_like_wildcards_are_literal(catalogue):
    assert codes(service_search(q="%")) == codes(service_search(q=""))  # punctuation is ignored
    assert codes(service_search(q="_")) == []
