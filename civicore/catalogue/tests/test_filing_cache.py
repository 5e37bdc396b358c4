import pytest

from civicore.applications.tests.factories import make_service
from civicore.catalogue import selectors
from civicore.catalogue.models import Service

pytestmark = pytest.mark.django_db


def test_online_service_is_cached_briefly_then_refreshed(monkeypatch, django_assert_num_queries):
    service = make_service()
    found = selectors.online_service(service.code)
    assert found is not None and found.current_version.definition["form"]
    with django_assert_num_queries(0):
        assert selectors.online_service(service.code) is found
    Service.objects.filter(pk=service.pk).update(online=False)
    monkeypatch.setattr(selectors, "SERVICE_CACHE_SECONDS", 0.0)
    assert selectors.online_service(service.code) is None


def test_unknown_and_hostile_codes_are_none():
    assert selectors.online_service("no-such-service") is None
    assert selectors.online_service("x\x00y") is None
