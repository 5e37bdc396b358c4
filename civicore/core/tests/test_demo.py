"""The demo's payments: the secrets file names the VNPAY sandbox's terminal, `demo load` gives
the agencies that charge fees their collection accounts, the demo services their fees and one
agency a payments officer (and loading again changes nothing), and `demo serve` starts the
sandbox as its own process, through which a demo citizen's fee is paid over real HTTP."""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

from civicore.agencies import permissions
from civicore.agencies.models import Officer
from civicore.applications import services as applications
from civicore.applications.tests.factories import pdf_upload
from civicore.catalogue import services as catalogue
from civicore.catalogue.models import Service, ServiceVersion
from civicore.core import demo, envfile
from civicore.core.management.commands import demo as demo_command
from civicore.identity.services import person_find_by_national_id
from civicore.payments import fees, services, vietqr, vnpay
from civicore.payments.models import CollectionAccount, Payment
from civicore.payments.tests.test_vnpay import closed_port, http_get, submit

FEE_AGENCIES = {"ubnd-xa-an-binh", "cong-an-xa-an-binh", "phong-kinh-te-an-binh", "so-xay-dung"}
NAPAS_BINS = {"970405": "Agribank", "970415": "VietinBank", "970418": "BIDV", "970436": "Vietcombank"}
TODAY = date(2026, 6, 1)


def _values(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


# --- the secrets file ----------------------------------------------------------------------------


def test_the_secrets_file_names_the_payment_sandbox_and_keeps_its_secret(tmp_path: Path) -> None:
    fresh = tmp_path / "secrets.env"
    envfile.main(str(fresh))
    values = _values(fresh)
    base = f"http://127.0.0.1:{envfile.PAYSANDBOX_PORT}"
    assert envfile.PAYSANDBOX_PORT == 8090
    assert values["VNPAY_TMN_CODE"] == "CIVICORE"
    assert values["VNPAY_PAYMENT_URL"] == base + vnpay.PAY_PATH
    assert values["VNPAY_API_URL"] == base + vnpay.API_PATH
    assert re.fullmatch(r"[0-9A-F]{64}", values["VNPAY_HASH_SECRET"])
    assert oct(fresh.stat().st_mode & 0o777) == "0o600"
    # Each installation has its own secret; a re-run changes nothing at all.
    other = tmp_path / "other.env"
    envfile.main(str(other))
    assert _values(other)["VNPAY_HASH_SECRET"] != values["VNPAY_HASH_SECRET"]
    before = fresh.read_bytes()
    envfile.main(str(fresh))
    assert fresh.read_bytes() == before
    # `make demo` sources the file in bash: the values arrive as they were written.
    shell = subprocess.run(  # noqa: S603 - fixed argument list
        [
            "/bin/bash",
            "-c",
            'set -a && source "$1" && set +a && echo "$VNPAY_HASH_SECRET|$VNPAY_API_URL"',
            "-",
            fresh,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout.strip() == f"{values['VNPAY_HASH_SECRET']}|{values['VNPAY_API_URL']}"


def test_an_older_secrets_file_gets_the_payment_settings_once_and_keeps_its_own(tmp_path: Path) -> None:
    older = tmp_path / "older.env"
    # A file from before payments: the sensors' settings are there, the terminal is not.
    older.write_text("SECRET_KEY=kept\nMQTT_URL=mqtt://127.0.0.1:1884\nMQTT_ADMIN_PASSWORD=p\n")
    envfile.main(str(older))
    added = _values(older)
    envfile.main(str(older))
    lines = older.read_text().splitlines()
    assert lines[:3] == ["SECRET_KEY=kept", "MQTT_URL=mqtt://127.0.0.1:1884", "MQTT_ADMIN_PASSWORD=p"]
    assert lines[3] == envfile.PAYMENTS_COMMENT
    assert [line.split("=")[0] for line in lines[4:]] == [
        "VNPAY_TMN_CODE",
        "VNPAY_HASH_SECRET",
        "VNPAY_PAYMENT_URL",
        "VNPAY_API_URL",
    ]
    assert _values(older) == added  # the second run kept the secret the first one wrote

    # An operator's own terminal, or a secret emptied on purpose, stays as it is.
    real = tmp_path / "real.env"
    real.write_text("VNPAY_TMN_CODE=MYTERM01\nVNPAY_HASH_SECRET=\n")
    envfile.main(str(real))
    values = _values(real)
    assert values["VNPAY_TMN_CODE"] == "MYTERM01" and values["VNPAY_HASH_SECRET"] == ""
    assert real.read_text().count("VNPAY_HASH_SECRET") == 1
    assert values["VNPAY_PAYMENT_URL"].endswith(vnpay.PAY_PATH)


# --- demo load -----------------------------------------------------------------------------------


def _first_birth_registration() -> dict[str, Any]:
    """Version 1 as an older demo loaded it: free, with no copies to ask for."""
    definition = yaml.safe_load((demo.SERVICES_DIR / "birth-registration.yaml").read_text(encoding="utf-8"))
    definition["version"] = 1
    definition["fee"] = {"amount": 0, "currency": "VND"}
    del definition["form"]["schema"]["properties"]["extract_copies"]
    definition["form"]["fields"] = [f for f in definition["form"]["fields"] if f["name"] != "extract_copies"]
    return definition


def _fee(code: str) -> dict[str, Any]:
    service = Service.objects.select_related("current_version").get(code=code)
    assert service.current_version is not None
    return dict(service.current_version.definition["fee"])


@pytest.mark.django_db
def test_demo_load_gives_fee_agencies_accounts_services_fees_and_a_payments_officer_once() -> None:
    # A demo loaded by the release before: birth registration at version 1.
    catalogue.agencies_load()
    first = catalogue.service_load(definition=_first_birth_registration())

    logins = demo.load()

    # Birth registration moved to version 2; version 1 stays for what was filed under it.
    birth = Service.objects.get(code="birth-registration")
    assert birth.current_version is not None and birth.current_version.number == 2
    assert ServiceVersion.objects.filter(pk=first.pk).exists()

    # A fixed fee due at submission.
    business = _fee("household-business-registration")
    quote = fees.quote(business, answers={}, today=TODAY)
    assert (quote.total, quote.due, [line.code for line in quote.lines]) == (
        100000,
        fees.SUBMISSION,
        ["base"],
    )
    # A fee per copy, due before release, that verified data can waive and typed data cannot.
    copies = _fee("birth-registration")
    assert fees.charges_anything(copies)
    assert fees.quote(copies, answers={}, today=TODAY).total == 0
    answers = {"extract_copies": 3, "applicant_date_of_birth": "1990-05-17"}
    quote = fees.quote(copies, answers=answers, verified={"applicant_date_of_birth"}, today=TODAY)
    assert (quote.total, quote.due) == (24000, fees.BEFORE_RELEASE)
    assert [(line.code, line.quantity, line.unit_amount) for line in quote.lines] == [
        ("extract-copies", 3, 8000)
    ]
    elderly = {**answers, "applicant_date_of_birth": "1960-01-02"}
    waived = fees.quote(copies, answers=elderly, verified={"applicant_date_of_birth"}, today=TODAY)
    assert waived.total == 0 and waived.exemption is not None and waived.subtotal == 24000
    assert fees.quote(copies, answers=elderly, verified=set(), today=TODAY).total == 24000

    # Every agency that charges a fee collects into one active account, and no other agency has one.
    accounts = list(CollectionAccount.objects.select_related("agency"))
    assert {account.agency.code for account in accounts} == FEE_AGENCIES
    assert len(accounts) == len(FEE_AGENCIES)
    for account in accounts:
        assert account.active and account.currency == "VND"
        assert NAPAS_BINS[account.bank_bin] == account.bank_name
        assert account.account_name == account.agency.name_vi
        assert account.account_number == demo.demo_account_number(account.agency.code)
        assert account.account_number.startswith("DEMO")
        # A VietQR code for it is well formed and reads back to the same account.
        code = vietqr.payload(
            bank_bin=account.bank_bin,
            account=account.account_number,
            amount_minor=8000,
            reference="CV0000000000",
        )
        read = vietqr.parse(code)
        assert (read.bank_bin, read.account, read.amount_minor) == (
            account.bank_bin,
            account.account_number,
            8000,
        )

    # A payments officer in the agency with the fixed fee: sees and refunds its payments, no cases.
    login = next(login for login in logins if login.role.startswith("payments officer"))
    officer = Officer.objects.select_related("agency").get(user__email=login.email)
    assert officer.agency.code == demo.PAYMENTS_AGENCY == "phong-kinh-te-an-binh"
    assert officer.roles == ["payments_officer"]
    granted = permissions.permissions_for(officer.roles)
    assert {permissions.PAYMENT_VIEW, permissions.PAYMENT_REFUND} <= granted
    assert permissions.CASE_VIEW not in granted
    assert login.password == demo.DEMO_PASSWORD and login.totp_secret == demo.OFFICER_SECRET

    # An open and an answered consultation, with a manager who can sign in to run them.
    from civicore.consultations.models import Consultation

    manager = next(login for login in logins if login.role == "consultation manager")
    assert permissions.CONSULTATION_MANAGE in permissions.permissions_for(
        Officer.objects.get(user__email=manager.email).roles
    )
    assert sorted(Consultation.objects.values_list("status", flat=True)) == ["open", "responded"]
    # The scorecards' tallies agree with everything the demo made.
    from django.core.management import call_command

    call_command("insights", "rebuild", "--check", stdout=io.StringIO())

    # Loading again adds nothing and keeps what an officer changed (an account closed).
    closed = CollectionAccount.objects.get(agency__code="so-xay-dung")
    closed.active = False
    closed.save(update_fields=["active"])
    versions = ServiceVersion.objects.count()
    again = demo.load()
    assert [login.email for login in again] == [login.email for login in logins]
    assert CollectionAccount.objects.count() == len(FEE_AGENCIES)
    assert not CollectionAccount.objects.get(pk=closed.pk).active
    assert ServiceVersion.objects.count() == versions
    assert Officer.objects.filter(user__email=login.email).count() == 1


# --- demo serve ----------------------------------------------------------------------------------


def _command() -> tuple[demo_command.Command, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return demo_command.Command(stdout=out, stderr=err), out, err


def _civicore() -> str:
    return os.path.join(os.path.dirname(sys.executable), "civicore")


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.test"),
    }


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    process.wait(timeout=15)


def _point_at(settings: Any, port: int, secret: str = "DEMO-SECRET-0123456789") -> None:  # noqa: S107
    settings.VNPAY_TMN_CODE = "CIVICORE"
    settings.VNPAY_HASH_SECRET = secret
    settings.VNPAY_PAYMENT_URL = f"http://127.0.0.1:{port}{vnpay.PAY_PATH}"
    settings.VNPAY_API_URL = f"http://127.0.0.1:{port}{vnpay.API_PATH}"


def test_the_sandbox_is_not_started_on_a_taken_port_without_a_secret_or_for_a_real_gateway(
    settings: Any, tmp_path: Path
) -> None:
    settings.VAR_DIR = tmp_path
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _point_at(settings, port)
        command, _out, err = _command()
        assert command._start_paysandbox(civicore=_civicore(), env=_env(), web_port=8000) is None
        assert f"something already listens on 127.0.0.1:{port}" in err.getvalue()
        assert "without card payments" in err.getvalue()

    _point_at(settings, closed_port(), secret="")
    command, _out, err = _command()
    assert command._start_paysandbox(civicore=_civicore(), env=_env(), web_port=8000) is None
    assert "VNPAY_HASH_SECRET is not set" in err.getvalue()

    settings.VNPAY_HASH_SECRET = "real-secret"
    settings.VNPAY_PAYMENT_URL = "https://pay.vnpay.vn/vpcpay.html"
    command, _out, err = _command()
    assert command._start_paysandbox(civicore=_civicore(), env=_env(), web_port=8000) is None
    assert err.getvalue() == ""  # a real gateway: nothing to start, nothing wrong
    assert not (tmp_path / "paysandbox.log").exists()


@pytest.mark.django_db(transaction=True)
def test_demo_serve_starts_the_sandbox_and_a_demo_fee_is_paid_through_it(
    settings: Any, live_server: Any, tmp_path: Path
) -> None:
    # The terminal as `make demo` writes it, on a port of its own for the test.
    secrets_file = tmp_path / "secrets.env"
    envfile.main(str(secrets_file))
    values = _values(secrets_file)
    port = closed_port()
    _point_at(settings, port, secret=values["VNPAY_HASH_SECRET"])
    settings.VAR_DIR = tmp_path
    web_port = int(urlsplit(live_server.url).port or 0)

    demo.load()
    command, _out, err = _command()
    sandbox = command._start_paysandbox(civicore=_civicore(), env=_env(), web_port=web_port)
    assert sandbox is not None, err.getvalue()
    try:
        # The secret went through the environment, not the command line.
        args = " ".join(str(arg) for arg in sandbox.args)  # type: ignore[union-attr]
        assert values["VNPAY_HASH_SECRET"] not in args
        assert f"--ipn-url http://127.0.0.1:{web_port}/payments/gateways/vnpay/callback/" in args

        # A demo citizen registers a birth with two extra copies: 16,000 VND before release.
        first = demo.CITIZENS[0]
        person = person_find_by_national_id(first[2])
        assert person is not None
        application = applications.application_start(
            person=person, service=Service.objects.get(code="birth-registration")
        )
        applications.document_attach(
            application=application, requirement="birth-certificate", upload=pdf_upload()
        )
        application = applications.application_submit(
            application=application,
            answers={
                "relationship_to_child": "father",
                "child_full_name": "Nguyễn Minh Châu",
                "child_date_of_birth": "2026-05-20",
                "child_gender": "female",
                "child_place_of_birth": "Trạm y tế xã An Bình",
                "mother_full_name": "Lê Thị Hoa",
                "extract_copies": "2",
            },
        )
        payment = services.payment_start(
            application=application, payer=person, method=Payment.Method.GATEWAY, gateway="vnpay"
        )
        assert payment.amount_minor == 16000

        # The payer goes to the sandbox's page, pays, and is sent back signed.
        return_url = f"{live_server.url}/payments/{payment.public_id}/return/"
        url = services.payment_checkout(payment=payment, return_url=return_url, payer_ip="127.0.0.1")
        assert url.startswith(f"http://127.0.0.1:{port}{vnpay.PAY_PATH}?")
        page = http_get(url)
        assert page.status == 200 and "16.000 ₫" in page.body and payment.reference in page.body
        answer = submit(f"http://127.0.0.1:{port}", page.body, "pay", bank="NCB")
        assert answer.status == 302, answer.body
        location = answer.headers["Location"]
        assert location.startswith(return_url + "?vnp_")
        returned = vnpay.from_settings().verify_return(dict(parse_qsl(urlsplit(location).query)))
        assert (returned.reference, returned.amount_minor) == (payment.reference, 16000)

        # The sandbox's server-to-server callback reaches the demo's web server and settles it.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            payment.refresh_from_db()
            if payment.status == Payment.Status.PAID:
                break
            time.sleep(0.1)
        assert payment.status == Payment.Status.PAID, payment.status
        assert payment.paid_minor == 16000 and payment.gateway_transaction
        assert payment.events.filter(source="gateway_callback", kind="paid").count() == 1
        # And the status query agrees, over the sandbox's API, signed with the same secret.
        events = payment.events.count()
        assert services.payment_query(payment=payment) == "already_settled"
        assert payment.events.count() == events
    finally:
        _stop(sandbox)
    assert sandbox.returncode is not None
    log = (tmp_path / "paysandbox.log").read_text()
    assert f"VNPAY sandbox listening on http://127.0.0.1:{port}" in log
    assert values["VNPAY_HASH_SECRET"] not in log


def test_demo_agencies_with_fees_match_the_shipped_definitions() -> None:
    """The banks table names every agency whose shipped service charges a fee."""
    charging = set()
    for path in sorted(demo.SERVICES_DIR.glob("*.yaml")):
        definition = yaml.safe_load(path.read_text(encoding="utf-8"))
        if fees.charges_anything(definition["fee"]):
            charging.add(definition["agency"])
    assert charging == FEE_AGENCIES == set(demo.COLLECTION_BANKS)
    assert demo.PAYMENTS_AGENCY in charging
