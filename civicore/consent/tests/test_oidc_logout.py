"""Back-Channel and Front-Channel Logout: when a citizen's Civicore session ends, in any of the ways
it can, every application that was issued an ID token in it is told. Logout tokens go out through
the job queue to real HTTP receivers that check them as an application would; the sign-out page
loads the applications' front-channel logout pages in hidden frames, allowed by its CSP alone."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from civicore.audit.models import AuditEntry
from civicore.consent import oidc
from civicore.consent.models import ClientSession
from civicore.consent.services import BACKCHANNEL_LOGOUT_JOB, pairwise_subject
from civicore.consent.tests.helpers import (
    PASSWORD,
    TOTP,
    approve,
    exchange,
    pkce_pair,
    record_login,
)
from civicore.core import jobs
from civicore.core.jose import public_jwks, reset_cache, signing_key
from civicore.core.middleware import CONTENT_SECURITY_POLICY
from civicore.core.models import Job
from civicore.identity.models import Person
from civicore.identity.tests.factories import PASSWORD as SECRET
from civicore.identity.tests.factories import log_in, make_citizen
from civicore.registry.models import AgencyApplication, MessageLogEntry
from civicore.registry.tests.factories import make_application

pytestmark = pytest.mark.django_db
LOGOUT_URI = "https://agency.example/signed-out"
FORM = "application/x-www-form-urlencoded"


# --- An application's back-channel logout endpoint ----------------------------------------------


@dataclass
class Arrival:
    content_type: str
    token: str
    header: dict[str, Any]
    claims: dict[str, Any]
    status: int


@dataclass
class LogoutReceiver:
    """A real HTTP server in a thread, standing for an application: it checks each logout token
    as Back-Channel Logout 1.0 section 2.6 asks (signature against Civicore's JWKS, typ, iss,
    aud, iat, exp, jti, events, sub or sid, no nonce), answers 400 to a bad one, and otherwise
    answers the next status of `answers` (the last one repeats)."""

    jwks: dict[str, Any]
    client_id: str
    issuer: str
    answers: list[int] = field(default_factory=lambda: [200])
    arrivals: list[Arrival] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/backchannel-logout"

    def check(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        decoded = jwt.decode(token, KeySet.import_key_set(self.jwks), algorithms=oidc.CLIENT_SIGNING_ALGS)
        claims = dict(decoded.claims)
        now = time.time()
        problems = [
            decoded.header.get("typ") != "logout+jwt" and "typ",
            claims.get("iss") != self.issuer and "iss",
            claims.get("aud") != self.client_id and "aud",
            not (now - 60 <= claims.get("iat", 0) <= now + 5) and "iat",
            not (now < claims.get("exp", 0) <= now + 300) and "exp",
            not claims.get("jti") and "jti",
            claims.get("events") != {oidc.BACKCHANNEL_LOGOUT_EVENT: {}} and "events",
            not (claims.get("sub") or claims.get("sid")) and "sub or sid",
            "nonce" in claims and "nonce",
        ]
        if failed := [problem for problem in problems if problem]:
            raise ValueError(", ".join(failed))
        return dict(decoded.header), claims

    def start(self) -> LogoutReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                content_type = self.headers.get("Content-Type", "")
                token = (parse_qs(body).get("logout_token") or [""])[0]
                try:
                    if content_type != FORM:
                        raise ValueError("content type")
                    header, claims = receiver.check(token)
                except (ValueError, JoseError) as exc:
                    receiver.invalid.append(str(exc))
                    self._answer(400, {"error": "invalid_request"})
                    return
                index = min(len(receiver.arrivals), len(receiver.answers) - 1)
                status = receiver.answers[index]
                receiver.arrivals.append(Arrival(content_type, token, header, claims, status))
                self._answer(status, None)

            def _answer(self, status: int, body: dict[str, Any] | None) -> None:
                data = json.dumps(body).encode() if body else b""
                self.send_response(status)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", str(len(data)))
                if body:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture(autouse=True)
def _platform_keys(settings: Any) -> Iterator[None]:
    settings.EXCHANGE_TIMEOUT_SECONDS = 3.0
    settings.EXCHANGE_TRANSPORT = "civicore.exchange.transport.HttpTransport"
    reset_cache()
    for alg in oidc.CLIENT_SIGNING_ALGS:
        signing_key(alg)  # published before the receivers read the JWKS
    yield
    reset_cache()


@pytest.fixture
def receivers() -> Iterator[Callable[..., LogoutReceiver]]:
    started: list[LogoutReceiver] = []

    def start(app: AgencyApplication | None = None, **kwargs: Any) -> LogoutReceiver:
        receiver = LogoutReceiver(
            jwks=public_jwks(), client_id=app.client_id if app else "", issuer=oidc.issuer(), **kwargs
        ).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def _application_with_receiver(
    receivers: Callable[..., LogoutReceiver], **fields: Any
) -> tuple[AgencyApplication, ECKey, LogoutReceiver]:
    """Registered first with a placeholder, then pointed at a receiver that knows its client_id."""
    answers = fields.pop("answers", [200])
    app, key = make_application(post_logout_redirect_uris=[LOGOUT_URI], **fields)
    receiver = receivers(app, answers=answers)
    AgencyApplication.objects.filter(pk=app.pk).update(backchannel_logout_uri=receiver.url)
    app.refresh_from_db()
    return app, key, receiver


@pytest.fixture
def citizen() -> Person:
    person = make_citizen()
    Person.objects.filter(pk=person.pk).update(assurance_level=2)
    return person


def _browser(person: Person) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(person.user)
    record_login(client, person.user, PASSWORD, TOTP)
    return client


def _signed_in(browser: Client, app: AgencyApplication, key: ECKey) -> dict[str, Any]:
    """The application logs the citizen in: approve, exchange; returns the ID token's claims."""
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope="openid")
    response = exchange(Client(), app, key, code=code, verifier=verifier)
    assert response.status_code == 200, response.content
    id_token = response.json()["id_token"]
    return dict(jwt.decode(id_token, KeySet.import_key_set(public_jwks())).claims)


def _logout_url(**params: str) -> str:
    return "/oauth/logout?" + urlencode(params)


def _rp_logout(browser: Client, app: AgencyApplication, key: ECKey, **params: str) -> Any:
    """RP-initiated logout, confirmed by the citizen."""
    verifier, challenge = pkce_pair()
    code = approve(browser, app, challenge=challenge, scope="openid")
    id_token = exchange(Client(), app, key, code=code, verifier=verifier).json()["id_token"]
    url = _logout_url(id_token_hint=id_token, **params)
    return browser.post(url, {"decision": "logout"})


def _logout_jobs() -> list[Job]:
    return list(Job.objects.filter(name=BACKCHANNEL_LOGOUT_JOB).order_by("id"))


def _run_due_jobs() -> None:
    jobs.work(once=True)


# --- Back-channel logout --------------------------------------------------------------------------


def test_discovery_says_both_logouts_are_supported_with_the_session() -> None:
    metadata = Client().get("/.well-known/openid-configuration").json()
    for name in (
        "backchannel_logout_supported",
        "backchannel_logout_session_supported",
        "frontchannel_logout_supported",
        "frontchannel_logout_session_supported",
    ):
        assert metadata[name] is True, name


def test_rp_initiated_logout_sends_each_client_of_the_session_a_logout_token_through_the_queue(
    citizen: Person, receivers: Any
) -> None:
    first, first_key, first_receiver = _application_with_receiver(
        receivers, backchannel_logout_session_required=True
    )
    second, second_key, second_receiver = _application_with_receiver(
        receivers, id_token_signed_response_alg="RS256"
    )
    quiet, quiet_key = make_application()  # no back-channel logout URI
    browser = _browser(citizen)
    first_id = _signed_in(browser, first, first_key)
    second_id = _signed_in(browser, second, second_key)
    _signed_in(browser, quiet, quiet_key)
    # Another browser of the same citizen is another session: it stays signed in everywhere.
    elsewhere = _browser(citizen)
    _signed_in(elsewhere, first, first_key)

    response = _rp_logout(browser, first, first_key, post_logout_redirect_uri=LOGOUT_URI, state="s1")
    assert response.status_code == 302
    assert response["Location"] == LOGOUT_URI + "?state=s1"
    # Never sent from the request itself: queued, one job per application told.
    assert first_receiver.arrivals == [] and second_receiver.arrivals == []
    assert len(_logout_jobs()) == 2
    _run_due_jobs()

    assert first_receiver.invalid == [] and second_receiver.invalid == []
    (one,) = first_receiver.arrivals
    (two,) = second_receiver.arrivals
    assert one.content_type == two.content_type == FORM
    assert one.header["alg"] == "ES256" and two.header["alg"] == "RS256"
    assert one.header["kid"] and one.header["typ"] == "logout+jwt"
    assert one.claims["sid"] == first_id["sid"] == second_id["sid"] == two.claims["sid"]
    assert one.claims["sub"] == first_id["sub"] == pairwise_subject(person=citizen, client_id=first.client_id)
    assert two.claims["sub"] == second_id["sub"] != one.claims["sub"]  # pairwise, per application
    assert set(one.claims) == {"iss", "aud", "iat", "exp", "jti", "sub", "sid", "events"}
    assert one.claims["exp"] - one.claims["iat"] <= 120
    assert one.claims["jti"] != two.claims["jti"]
    assert {job.status for job in _logout_jobs()} == {Job.Status.DONE}

    # Each delivery is in the message log and the audit chain; the end of the session too.
    deliveries = MessageLogEntry.objects.filter(operation="session.logout").order_by("id")
    assert [(d.application_id, d.direction, d.status) for d in deliveries] == [
        (first.pk, "out", 200),
        (second.pk, "out", 200),
    ]
    assert {d.message_id for d in deliveries} == {one.claims["jti"], two.claims["jti"]}
    ended = AuditEntry.objects.get(action="consent.session.end")
    assert ended.person_id == citizen.pk
    assert ended.details["cause"] == "logout"
    assert sorted(ended.details["clients"]) == sorted([first.client_id, second.client_id, quiet.client_id])
    assert sorted(ended.details["backchannel"]) == sorted([first.client_id, second.client_id])
    assert ClientSession.objects.filter(ended_at__isnull=True).count() == 1  # the other browser's


def test_a_failed_delivery_is_retried_with_back_off_and_every_attempt_is_logged(
    citizen: Person, receivers: Any
) -> None:
    app, key, receiver = _application_with_receiver(receivers, answers=[503, 200])
    browser = _browser(citizen)
    _rp_logout(browser, app, key)
    _run_due_jobs()
    (job,) = _logout_jobs()
    assert job.status == Job.Status.PENDING and job.attempts == 1
    assert job.run_after > timezone.now()  # backing off
    assert "HTTP 503" in job.last_error
    _run_due_jobs()
    assert len(receiver.arrivals) == 1  # not yet due

    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() - timedelta(seconds=1))
    _run_due_jobs()
    job.refresh_from_db()
    assert job.status == Job.Status.DONE and job.attempts == 2
    assert [arrival.status for arrival in receiver.arrivals] == [503, 200]
    first, second = receiver.arrivals
    assert first.claims["jti"] != second.claims["jti"]  # a fresh token for each attempt
    assert first.claims["sid"] == second.claims["sid"]
    # The failed attempt is on the job (its writes were undone with it); the delivery is logged.
    (delivered,) = MessageLogEntry.objects.filter(operation="session.logout")
    assert (delivered.status, delivered.message_id) == (200, second.claims["jti"])


def test_an_unreachable_application_is_retried(citizen: Person, receivers: Any) -> None:
    app, key, receiver = _application_with_receiver(receivers)
    receiver.stop()
    browser = _browser(citizen)
    _rp_logout(browser, app, key)
    _run_due_jobs()
    (job,) = _logout_jobs()
    assert job.status == Job.Status.PENDING and job.attempts == 1
    assert "connection refused" in job.last_error
    assert not MessageLogEntry.objects.filter(operation="session.logout").exists()


def test_a_token_the_application_refuses_is_not_sent_again(citizen: Person, receivers: Any) -> None:
    app, key, receiver = _application_with_receiver(receivers)
    receiver.client_id = "someone-else"  # it now finds the audience wrong, and answers 400
    browser = _browser(citizen)
    _rp_logout(browser, app, key)
    _run_due_jobs()
    (job,) = _logout_jobs()
    assert job.status == Job.Status.DONE and job.attempts == 1
    assert receiver.invalid == ["aud"]
    assert MessageLogEntry.objects.get(operation="session.logout").status == 400


def test_civicores_own_sign_out_tells_the_clients(citizen: Person, receivers: Any) -> None:
    app, key, receiver = _application_with_receiver(receivers)
    browser = _browser(citizen)
    id_claims = _signed_in(browser, app, key)
    assert browser.post("/accounts/logout/").status_code == 302
    _run_due_jobs()
    (arrival,) = receiver.arrivals
    assert arrival.claims["sid"] == id_claims["sid"]
    # The session is over: signing out again, or anything else, tells nobody twice.
    Client().post("/accounts/logout/")
    _run_due_jobs()
    assert len(receiver.arrivals) == 1


def test_no_logout_for_a_switched_off_application_or_one_never_given_an_id_token(
    citizen: Person, receivers: Any
) -> None:
    switched_off, off_key, off_receiver = _application_with_receiver(receivers)
    never, _never_key, never_receiver = _application_with_receiver(receivers)
    browser = _browser(citizen)
    _signed_in(browser, switched_off, off_key)
    approve(browser, never, challenge=pkce_pair()[1], scope="openid")  # a code, never exchanged
    AgencyApplication.objects.filter(pk=switched_off.pk).update(active=False)
    browser.post("/accounts/logout/")
    assert _logout_jobs() == []
    _run_due_jobs()
    assert off_receiver.arrivals == [] and never_receiver.arrivals == []


def _really_logged_in(person: Person) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    log_in(client, person.user)
    client.get("/")  # the sessions page lists it from here on
    return client


@pytest.mark.parametrize("page", ["civicore", "allauth"])
def test_ending_a_session_from_a_sessions_page_tells_its_clients(
    citizen: Person, receivers: Any, page: str
) -> None:
    from allauth.usersessions.models import UserSession

    app, key, receiver = _application_with_receiver(receivers)
    laptop = _really_logged_in(citizen)
    laptop_id = _signed_in(laptop, app, key)
    phone = _really_logged_in(citizen)
    phone_id = _signed_in(phone, app, key)
    assert laptop_id["sid"] != phone_id["sid"]

    if page == "civicore":
        session = UserSession.objects.get(session_key=laptop.session.session_key)
        assert phone.post(f"/my-profile/sessions/{session.pk}/end/").status_code == 302
    else:
        assert phone.post("/accounts/sessions/").status_code == 302  # "sign out everywhere else"
    assert laptop.get("/my-data/consents/").status_code == 302  # the laptop is signed out
    _run_due_jobs()
    (arrival,) = receiver.arrivals
    assert arrival.claims["sid"] == laptop_id["sid"]
    assert AuditEntry.objects.get(action="consent.session.end").details["cause"] == "session_ended"


def test_a_password_change_tells_the_clients_of_the_other_sessions(citizen: Person, receivers: Any) -> None:
    app, key, receiver = _application_with_receiver(receivers)
    laptop = _really_logged_in(citizen)
    laptop_id = _signed_in(laptop, app, key)
    phone = _really_logged_in(citizen)
    _signed_in(phone, app, key)
    changed = phone.post(
        "/accounts/password/change/",
        {
            "oldpassword": SECRET,
            "password1": "mango river lantern 8127 quietly",
            "password2": "mango river lantern 8127 quietly",
        },
    )
    assert changed.status_code == 302, changed.content.decode()[:1000]
    assert laptop.get("/my-data/consents/").status_code == 302  # Django ended the laptop's session
    assert phone.get("/my-data/consents/").status_code == 200  # the phone goes on
    _run_due_jobs()
    (arrival,) = receiver.arrivals
    assert arrival.claims["sid"] == laptop_id["sid"]
    assert AuditEntry.objects.get(action="consent.session.end").details["cause"] == "password_changed"


# --- Front-channel logout -----------------------------------------------------------------------


def test_the_sign_out_page_frames_each_clients_front_channel_logout_page_then_continues(
    citizen: Person,
) -> None:
    asking, asking_key = make_application(
        post_logout_redirect_uris=[LOGOUT_URI],
        frontchannel_logout_uri="https://agency.example/fc-logout?from=civicore",
        frontchannel_logout_session_required=True,
    )
    other, other_key = make_application(
        redirect_uris=["https://agency.example/callback", "https://other.example/callback"],
        frontchannel_logout_uri="https://other.example/logout",
    )
    browser = _browser(citizen)
    _signed_in(browser, other, other_key)
    page = browser.get(_logout_url())  # the confirmation page frames nothing
    assert "frame-src" not in page["Content-Security-Policy"]

    response = _rp_logout(browser, asking, asking_key, post_logout_redirect_uri=LOGOUT_URI, state="s2")
    assert response.status_code == 200
    html = response.content.decode()
    assert "You are signed out" in html
    sid = ClientSession.objects.filter(application=asking).get().sid
    frames = [frame for frame in html.split("<iframe")[1:]]
    assert len(frames) == 2
    other_src = 'src="https://other.example/logout"'
    asking_query = urlencode({"from": "civicore", "iss": oidc.issuer(), "sid": sid}).replace("&", "&amp;")
    assert any(other_src in frame for frame in frames)  # no iss or sid: not asked for
    assert any(f'src="https://agency.example/fc-logout?{asking_query}"' in frame for frame in frames)
    assert all(" hidden" in frame and "title=" in frame for frame in frames)
    assert f'href="{LOGOUT_URI}?state=s2"' in html
    assert "frontchannel-logout.js" in html
    csp = response["Content-Security-Policy"]
    assert csp == CONTENT_SECURITY_POLICY + "; frame-src https://other.example https://agency.example"
    assert browser.get("/my-data/consents/").status_code == 302  # signed out


def test_the_sign_out_page_without_a_way_back_still_frames_the_logout_pages(citizen: Person) -> None:
    app, key = make_application(frontchannel_logout_uri="https://agency.example/fc-logout")
    browser = _browser(citizen)
    _signed_in(browser, app, key)
    response = browser.post(_logout_url(), {"decision": "logout"})
    html = response.content.decode()
    assert 'src="https://agency.example/fc-logout"' in html
    assert "logout-continue" not in html and "frontchannel-logout.js" not in html
    assert "You can close this page" in html
    assert response["Content-Security-Policy"].endswith("; frame-src https://agency.example")


def test_without_front_channel_clients_the_sign_out_goes_straight_back(citizen: Person) -> None:
    app, key = make_application(post_logout_redirect_uris=[LOGOUT_URI])
    browser = _browser(citizen)
    response = _rp_logout(browser, app, key, post_logout_redirect_uri=LOGOUT_URI)
    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == urlsplit(LOGOUT_URI).path
