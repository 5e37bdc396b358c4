"""A client's OpenID Connect metadata: signing algorithms from the allowed list, logout URIs that
are https (plain http only to this computer during development), and only platform
administrators change them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from civicore.agencies.tests.factories import back_office_client, make_officer
from civicore.core.errors import PermissionDenied, ValidationFailed
from civicore.identity.tests.factories import UserFactory
from civicore.registry.models import AgencyApplication
from civicore.registry.services import agency_application_update_by_officer
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id_token_signed_response_alg", "HS256"),
        ("id_token_signed_response_alg", "none"),
        ("id_token_signed_response_alg", ""),
        ("userinfo_signed_response_alg", "PS256"),
        ("userinfo_signed_response_alg", "none"),
    ],
)
def test_only_the_platform_algorithms_may_be_registered(field: str, value: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        make_application(**{field: value})
    assert field in exc.value.details


def test_the_registered_algorithms_are_kept() -> None:
    app, _key = make_application(id_token_signed_response_alg="RS256", userinfo_signed_response_alg="ES256")
    app.refresh_from_db()
    assert (app.id_token_signed_response_alg, app.userinfo_signed_response_alg) == ("RS256", "ES256")
    plain, _key = make_application()
    assert (plain.id_token_signed_response_alg, plain.userinfo_signed_response_alg) == ("ES256", "")


@pytest.mark.parametrize(
    "uri",
    [
        "http://agency.example/logout",
        "ftp://agency.example/logout",
        "https://agency.example/logout#frag",
        "https://user:pw@agency.example/logout",
        "https://agency.example:99999/logout",
        "/relative/logout",
        "javascript:alert(1)",
    ],
)
@pytest.mark.parametrize("field", ["backchannel_logout_uri", "frontchannel_logout_uri"])
def test_logout_uris_must_be_https_without_fragment(field: str, uri: str) -> None:
    with pytest.raises(ValidationFailed) as exc:
        make_application(**{field: uri})
    assert field in exc.value.details


def test_good_logout_uris_are_kept() -> None:
    app, _key = make_application(
        backchannel_logout_uri="https://backend.agency.example/oidc/logout?tenant=1",
        backchannel_logout_session_required=True,
        frontchannel_logout_uri="https://agency.example/signed-out-frame",
        frontchannel_logout_session_required=True,
    )
    app.refresh_from_db()
    assert app.backchannel_logout_uri.startswith("https://backend.")
    assert app.frontchannel_logout_session_required is True


def test_the_front_channel_logout_uri_shares_a_redirect_uris_origin() -> None:
    with pytest.raises(ValidationFailed) as exc:
        make_application(frontchannel_logout_uri="https://elsewhere.example/signed-out")
    assert "frontchannel_logout_uri" in exc.value.details
    with pytest.raises(ValidationFailed):
        make_application(frontchannel_logout_uri="https://agency.example:8443/signed-out")


def test_http_to_this_computer_only_while_civicore_runs_here(settings: Any) -> None:
    local = {
        "redirect_uris": ["http://127.0.0.1:9000/callback"],
        "backchannel_logout_uri": "http://localhost:9000/logout",
        "frontchannel_logout_uri": "http://127.0.0.1:9000/frame",
    }
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.DEBUG = False
    make_application(**local)
    settings.SITE_URL = "https://dichvucong.example.vn"
    with pytest.raises(ValidationFailed) as exc:
        make_application(**local)
    assert {"backchannel_logout_uri", "frontchannel_logout_uri"} <= set(exc.value.details)
    settings.DEBUG = True
    make_application(**local)
    with pytest.raises(ValidationFailed):
        make_application(backchannel_logout_uri="http://agency.example/logout")


def test_agency_supervisors_cannot_change_the_metadata() -> None:
    app, _key = make_application()
    officer = make_officer(agency=app.agency, roles=("agency_admin",))
    with pytest.raises(PermissionDenied):
        agency_application_update_by_officer(
            officer=officer, application=app, id_token_signed_response_alg="RS256"
        )
    with pytest.raises(PermissionDenied):
        agency_application_update_by_officer(
            officer=officer, application=app, backchannel_logout_uri="https://agency.example/logout"
        )
    app.refresh_from_db()
    assert app.id_token_signed_response_alg == "ES256" and app.backchannel_logout_uri == ""


# --- Django admin -------------------------------------------------------------------------------


def _admin_form(app: AgencyApplication, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name_vi": app.name_vi,
        "name_en": app.name_en,
        "agency": app.agency_id,
        "client_id": app.client_id,
        "description_vi": "",
        "description_en": "",
        "redirect_uris": json.dumps(app.redirect_uris),
        "jwks": json.dumps(app.jwks),
        "jwks_url": "",
        "webhook_url": "",
        "allowed_items": json.dumps(app.allowed_items),
        "purposes": json.dumps(app.purposes),
        "subscribed_items": json.dumps(app.subscribed_items),
        "post_logout_redirect_uris": json.dumps(app.post_logout_redirect_uris),
        "id_token_signed_response_alg": app.id_token_signed_response_alg,
        "userinfo_signed_response_alg": app.userinfo_signed_response_alg,
        "backchannel_logout_uri": "",
        "frontchannel_logout_uri": "",
        "active": "on",
        "created_at_0": app.created_at.strftime("%Y-%m-%d"),
        "created_at_1": app.created_at.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_platform_administrators_set_the_metadata_in_the_admin() -> None:
    app, _key = make_application()
    staff = back_office_client(UserFactory(is_staff=True, is_superuser=True))
    url = f"/admin/registry/agencyapplication/{app.pk}/change/"
    page = staff.get(url)
    assert page.status_code == 200
    for field in ("id_token_signed_response_alg", "userinfo_signed_response_alg", "backchannel_logout_uri"):
        assert f'name="{field}"' in page.content.decode()

    refused = staff.post(
        url,
        _admin_form(
            app,
            id_token_signed_response_alg="HS256",
            backchannel_logout_uri="http://agency.example/logout",
            frontchannel_logout_uri="https://elsewhere.example/frame",
        ),
    )
    assert refused.status_code == 200
    errors = refused.context["adminform"].form.errors
    assert {"id_token_signed_response_alg", "backchannel_logout_uri", "frontchannel_logout_uri"} <= set(
        errors
    )
    app.refresh_from_db()
    assert app.id_token_signed_response_alg == "ES256"

    saved = staff.post(
        url,
        _admin_form(
            app,
            id_token_signed_response_alg="RS256",
            userinfo_signed_response_alg="RS256",
            backchannel_logout_uri="https://agency.example/backchannel",
            backchannel_logout_session_required="on",
            frontchannel_logout_uri="https://agency.example/frame",
        ),
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors if saved.context else saved
    app.refresh_from_db()
    assert app.id_token_signed_response_alg == "RS256"
    assert app.userinfo_signed_response_alg == "RS256"
    assert app.backchannel_logout_uri == "https://agency.example/backchannel"
    assert app.backchannel_logout_session_required is True
    assert app.frontchannel_logout_uri == "https://agency.example/frame"
