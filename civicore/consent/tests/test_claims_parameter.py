"""The `claims` request parameter (OpenID Connect Core 5.5): claims asked for by name, for
userinfo or the ID token, shown on the consent screen, kept with the grant and released only
when the application may have the item and the citizen consented."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from civicore.consent import oidc
from civicore.consent.models import AuthorizationCode, Consent
from civicore.consent.services import pairwise_subject
from civicore.consent.tests.helpers import (
    ASSERTION_TYPE,
    PASSWORD,
    TOTP,
    approve,
    authorize_query,
    authorize_url,
    client_assertion,
    exchange,
    pkce_pair,
    push,
    record_login,
    redirect_params,
)
from civicore.core.jose import reset_cache
from civicore.identity.models import Person
from civicore.identity.services import profile_item_declare
from civicore.identity.tests.factories import make_citizen
from civicore.registry.models import AgencyApplication, MessageLogEntry
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db
ALLOWED = ["full_name", "date_of_birth", "address", "email", "phone"]


@pytest.fixture(autouse=True)
def _fresh_platform_keys() -> Any:
    reset_cache()
    yield
    reset_cache()


@pytest.fixture
def citizen() -> Person:
    return make_citizen()


@pytest.fixture
def browser(citizen: Person) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(citizen.user)
    record_login(client, citizen.user, PASSWORD, TOTP)
    return client


@pytest.fixture
def agency() -> tuple[AgencyApplication, ECKey]:
    return make_application(allowed_items=ALLOWED)


def _claims(**members: Any) -> str:
    return json.dumps(members)


def _flow(browser: Client, app: AgencyApplication, key: ECKey, **extra: Any) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    extra.setdefault("scope", "openid")
    code = approve(browser, app, challenge=challenge, **extra)
    response = exchange(Client(), app, key, code=code, verifier=verifier)
    assert response.status_code == 200, response.content
    return dict(response.json())


def _id_claims(id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(Client().get("/.well-known/jwks.json").json())
    return dict(jwt.decode(id_token, keys).claims)


def _userinfo(token: str) -> dict[str, Any]:
    response = Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    return dict(response.json())


# --- Reading the parameter ----------------------------------------------------------------------


def test_the_parameter_keeps_only_claims_the_client_may_ask_for() -> None:
    text = _claims(
        userinfo={"birthdate": None, "national_id": None, "favourite_colour": None, "email_verified": None},
        id_token={
            "name": {"essential": True},
            "sub": {"value": "abc"},
            "acr": {"values": ["urn:civicore:loa:2"]},
            "auth_time": {"essential": True},
        },
        something_else={"name": None},
    )
    parsed = oidc.parse_claims_request(text, ALLOWED)
    # national_id is an item the client may not have; the rest are not claims Civicore knows.
    assert parsed.userinfo == {"birthdate": None, "email_verified": None}
    assert parsed.id_token == {
        "name": {"essential": True},
        "sub": {"value": "abc"},
        "acr": {"values": ["urn:civicore:loa:2"]},
    }
    assert parsed.items() == ["date_of_birth", "email", "full_name"]
    assert parsed.items("id_token") == ["full_name"]
    assert parsed.essential_items() == {"full_name"}
    assert parsed.expected("sub") == ["abc"]
    assert oidc.ClaimsRequest.from_json(parsed.as_json()) == parsed
    assert not oidc.parse_claims_request("", ALLOWED)
    assert not oidc.parse_claims_request(None, ALLOWED)


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '"userinfo"',
        '{"userinfo": []}',
        '{"id_token": "name"}',
        '{"userinfo": {"name": "yes"}}',
        '{"userinfo": {"name": {"essential": "true"}}}',
        '{"userinfo": {"name": {"values": "Nguyễn"}}}',
        '{"userinfo": {"name": {"values": []}}}',
        '{"userinfo": {"name": {"value": {"a": 1}}}}',
        '{"userinfo": {"name": {"values": [[1]]}}}',
        "[" * 3000 + "]" * 3000,
        json.dumps({"userinfo": {f"c{n}": None for n in range(51)}}),
        json.dumps({"userinfo": {"name": {"value": "x" * 5000}}}),
    ],
)
def test_a_malformed_parameter_is_refused(text: str) -> None:
    with pytest.raises(oidc.InvalidClaimsRequest):
        oidc.parse_claims_request(text, ALLOWED)


# --- The whole flow -----------------------------------------------------------------------------


def test_claims_asked_for_by_name_are_consented_and_released_where_asked(
    browser: Client, citizen: Person, agency: Any
) -> None:
    app, key = agency
    claims = _claims(
        userinfo={"birthdate": None, "national_id": {"essential": True}},
        id_token={"name": {"essential": True}, "email": None},
    )
    verifier, challenge = pkce_pair()
    url = authorize_url(authorize_query(app, challenge=challenge, scope="openid", claims=claims))
    page = browser.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    # Shown like items asked for in the scope; the essential one says so; the one the client may
    # not have is not asked at all.
    table = html[html.index('id="consent-items"') : html.index("</table>")]
    for label in ("Full name", "Date of birth", "E-mail address"):
        assert label in table, label
    assert "National ID number" not in table
    assert table.count("consent-essential") == 1
    response = browser.post(url, {"decision": "approve"})
    code = redirect_params(response["Location"])["code"]
    assert set(Consent.objects.get().items) == {"date_of_birth", "full_name", "email"}
    assert AuthorizationCode.objects.get().claims == {
        "userinfo": {"birthdate": None},
        "id_token": {"name": {"essential": True}, "email": None},
    }
    token = exchange(Client(), app, key, code=code, verifier=verifier).json()

    id_claims = _id_claims(token["id_token"])
    assert id_claims["name"] == (citizen.user.full_name or "Nguyễn Văn An")
    assert id_claims["email"] == citizen.user.email
    assert "email_verified" not in id_claims  # not asked for by name
    assert "birthdate" not in id_claims
    assert id_claims["sub"] == pairwise_subject(person=citizen, client_id=app.client_id)

    info = _userinfo(token["access_token"])
    assert info == {"sub": id_claims["sub"], "birthdate": "1990-05-17"}
    # Both releases are in the message log with the items they carried.
    logged = sorted(
        tuple(sorted(entry.items)) for entry in MessageLogEntry.objects.filter(operation="person.read")
    )
    assert logged == [("date_of_birth",), ("email", "full_name")]


def test_scope_and_claims_together_and_a_claim_the_citizen_does_not_hold(
    browser: Client, citizen: Person, agency: Any
) -> None:
    app, key = agency
    claims = _claims(userinfo={"phone_number_verified": None}, id_token={"address": None})
    token = _flow(browser, app, key, scope="openid profile", claims=claims)
    # No phone number in the profile: nothing about it is sent, and no error.
    info = _userinfo(token["access_token"])
    assert set(info) == {"sub", "name", "birthdate"}
    assert _id_claims(token["id_token"])["address"] == {"formatted": "12 Đường Lê Lợi, xã An Bình"}
    profile_item_declare(person=citizen, key="phone", value="0901234567")
    info = _userinfo(token["access_token"])
    assert info["phone_number_verified"] is False
    assert "phone_number" not in info  # only the claim asked for


def test_the_refreshed_id_token_carries_the_claims_asked_for_again(browser: Client, agency: Any) -> None:
    app, key = agency
    token = _flow(
        browser, app, key, scope="openid offline_access", claims=_claims(id_token={"birthdate": None})
    )
    assert _id_claims(token["id_token"])["birthdate"] == "1990-05-17"
    refreshed = Client().post(
        "/oauth/token",
        {
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(app, key),
        },
    )
    assert refreshed.status_code == 200, refreshed.content
    assert _id_claims(refreshed.json()["id_token"])["birthdate"] == "1990-05-17"


def test_claims_without_the_openid_scope_ask_for_nothing(browser: Client, agency: Any) -> None:
    app, key = agency
    _flow(browser, app, key, scope="full_name", claims=_claims(userinfo={"birthdate": None}))
    assert Consent.objects.get().items == ["full_name"]
    assert AuthorizationCode.objects.get().claims == {}


def test_a_malformed_parameter_goes_back_to_the_client_as_invalid_request(
    browser: Client, agency: Any
) -> None:
    app, _key = agency
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="openid", claims="{oops"))
    response = browser.get(url)
    assert response.status_code == 302
    params = redirect_params(response["Location"])
    assert params["error"] == "invalid_request"
    assert params["state"] == "state-123"
    assert "claims" in params["error_description"]
    # A claim name no error description could carry still gets a proper error.
    odd = _claims(userinfo={'tên "đầy đủ"\\': "x"})
    url = authorize_url(authorize_query(app, challenge=pkce_pair()[1], scope="openid", claims=odd))
    params = redirect_params(browser.get(url)["Location"])
    assert params["error"] == "invalid_request"
    twice = authorize_query(app, challenge=pkce_pair()[1], scope="openid")
    query = urlencode(twice) + "&claims=%7B%7D&claims=%7B%7D"
    assert redirect_params(browser.get("/oauth/authorize?" + query)["Location"])["error"] == "invalid_request"
    assert not Consent.objects.exists()


def test_claims_pushed_with_par(browser: Client, agency: Any) -> None:
    app, key = agency
    bad = push(Client(), app, key, challenge=pkce_pair()[1], scope="openid", claims='{"userinfo": 1}')
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request"
    verifier, challenge = pkce_pair()
    pushed = push(
        Client(), app, key, challenge=challenge, scope="openid", claims=_claims(id_token={"birthdate": None})
    )
    assert pushed.status_code == 201
    url = "/oauth/authorize?" + urlencode(
        {"client_id": app.client_id, "request_uri": pushed.json()["request_uri"]}
    )
    assert "Date of birth" in browser.get(url).content.decode()
    code = redirect_params(browser.post(url, {"decision": "approve"})["Location"])["code"]
    token = exchange(Client(), app, key, code=code, verifier=verifier).json()
    assert _id_claims(token["id_token"])["birthdate"] == "1990-05-17"


def test_a_sub_with_a_value_must_be_the_signed_in_citizen(
    browser: Client, citizen: Person, agency: Any
) -> None:
    app, _key = agency
    other = pairwise_subject(person=make_citizen(), client_id=app.client_id)
    url = authorize_url(
        authorize_query(
            app, challenge=pkce_pair()[1], scope="openid", claims=_claims(id_token={"sub": {"value": other}})
        )
    )
    params = redirect_params(browser.get(url)["Location"])
    assert params["error"] == "login_required"
    assert params["state"] == "state-123"
    mine = pairwise_subject(person=citizen, client_id=app.client_id)
    url = authorize_url(
        authorize_query(
            app, challenge=pkce_pair()[1], scope="openid", claims=_claims(id_token={"sub": {"value": mine}})
        )
    )
    assert browser.get(url).status_code == 200
