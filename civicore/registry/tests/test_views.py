from __future__ import annotations

import json

import pytest
from joserfc.jwk import ECKey

from civicore.agencies.tests.factories import AgencyFactory, make_officer
from civicore.audit.models import AuditEntry
from civicore.identity.tests.factories import log_in
from civicore.registry.models import AgencyApplication
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db


def _supervisor(client, agency=None):  # type: ignore[no-untyped-def]
    officer = make_officer(agency=agency, roles=("decider", "agency_admin"))
    log_in(client, officer.user)  # the back office needs the second factor
    return officer


def _public_jwks() -> str:
    return json.dumps({"keys": [ECKey.generate_key("P-256", auto_kid=True).as_dict(private=False)]})


def test_supervisor_registers_a_system_that_starts_without_access(client) -> None:  # type: ignore[no-untyped-def]
    officer = _supervisor(client)
    response = client.post(
        "/office/systems/new/",
        {
            "slug": "benefits",
            "name_vi": "Hệ thống trợ cấp",
            "redirect_uris": "https://benefits.example/cb\n",
            "jwks": _public_jwks(),
            "active": "on",
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    app = AgencyApplication.objects.get(client_id=f"{officer.agency.code}-benefits")
    assert response.status_code == 302
    assert app.allowed_items == [] and app.purposes == [] and not app.is_agency_of_record
    assert app.redirect_uris == ["https://benefits.example/cb"]
    assert AuditEntry.objects.filter(action="registry.application.create", actor=officer.user).exists()
    page = client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Hệ thống trợ cấp" in page and "Nothing yet" in page


def test_a_private_key_or_bad_json_is_refused_next_to_the_field(client) -> None:  # type: ignore[no-untyped-def]
    _supervisor(client)
    private = json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]})
    for value, message in ((private, "private key"), ("{not json", "not valid JSON")):
        response = client.post(
            "/office/systems/new/",
            {"slug": "x1", "name_vi": "X", "jwks": value},
            HTTP_ACCEPT_LANGUAGE="en",
        )
        assert response.status_code == 200
        assert message in response.content.decode()
    assert not AgencyApplication.objects.exists()


def test_subscriptions_stay_within_granted_items_and_rights_cannot_be_widened(client) -> None:  # type: ignore[no-untyped-def]
    officer = _supervisor(client)
    app, _ = make_application(agency=officer.agency, webhook_url="https://agency.example/hook")
    form = {
        "name_vi": app.name_vi,
        "jwks": json.dumps(app.jwks),
        "webhook_url": "https://agency.example/hook",
        "redirect_uris": "https://agency.example/callback",
        "active": "on",
        "subscribed_items": ["address"],
        # Not on the form: a crafted request must not widen access.
        "allowed_items": ["national_id"],
        "is_agency_of_record": "on",
    }
    response = client.post(f"/office/systems/{app.client_id}/", form)
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.subscribed_items == ["address"]
    assert "national_id" not in app.allowed_items and not app.is_agency_of_record
    form["subscribed_items"] = ["national_id"]
    response = client.post(f"/office/systems/{app.client_id}/", form, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    app.refresh_from_db()
    assert app.subscribed_items == ["address"]


def test_other_agencies_systems_are_forbidden_and_unknown_ones_not_found(client) -> None:  # type: ignore[no-untyped-def]
    _supervisor(client)
    other, _ = make_application(agency=AgencyFactory())
    assert client.get(f"/office/systems/{other.client_id}/").status_code == 403
    assert client.post(f"/office/systems/{other.client_id}/", {"name_vi": "hijack"}).status_code == 403
    assert client.get("/office/systems/no-such-system/").status_code == 404
    other.refresh_from_db()
    assert other.name_vi != "hijack"


@pytest.mark.parametrize("roles", [("caseworker",), ("decider",), (), None])
def test_officers_without_systems_manage_and_citizens_cannot_manage_systems(client, roles) -> None:  # type: ignore[no-untyped-def]
    from civicore.identity.tests.factories import UserFactory

    user = make_officer(roles=roles).user if roles is not None else UserFactory()
    log_in(client, user)
    assert client.get("/office/systems/").status_code == 403
    assert client.post("/office/systems/new/", {"slug": "a", "name_vi": "A"}).status_code == 403
    assert not AgencyApplication.objects.exists()


def test_anonymous_is_sent_to_login(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/office/systems/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_list_shows_only_own_agency(client, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    officer = _supervisor(client)
    for _ in range(3):
        make_application(agency=officer.agency)
    other, _ = make_application(agency=AgencyFactory())
    with django_assert_max_num_queries(12):
        page = client.get("/office/systems/").content.decode()
    assert other.client_id not in page
    assert sum(app.client_id in page for app in AgencyApplication.objects.filter(agency=officer.agency)) == 3


def test_supervisor_sets_logout_addresses_and_requires_par(client) -> None:  # type: ignore[no-untyped-def]
    officer = _supervisor(client)
    app, _ = make_application(agency=officer.agency)
    form = {
        "name_vi": app.name_vi,
        "jwks": json.dumps(app.jwks),
        "redirect_uris": "https://agency.example/callback",
        "post_logout_redirect_uris": "https://agency.example/signed-out\n",
        "require_par": "on",
        "active": "on",
    }
    assert client.post(f"/office/systems/{app.client_id}/", form).status_code == 302
    app.refresh_from_db()
    assert app.post_logout_redirect_uris == ["https://agency.example/signed-out"] and app.require_par
    form["post_logout_redirect_uris"] = "javascript:alert(1)"
    assert client.post(f"/office/systems/{app.client_id}/", form).status_code == 200
    app.refresh_from_db()
    assert app.post_logout_redirect_uris == ["https://agency.example/signed-out"]
