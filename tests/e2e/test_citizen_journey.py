"""The whole journey in a real browser: a citizen applies for birth registration, the officer
asks for more information, the citizen answers, the officer approves, and the citizen downloads
the signed PDF and checks it at /verify. Every page on the way is checked with axe-core."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.cache import cache

from civicore.applications.models import Application
from civicore.core import demo, jobs
from tests.e2e.accessibility import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CITIZEN = demo.CITIZENS[0]
CITIZEN_EMAIL, CITIZEN_NAME, CITIZEN_SECRET = CITIZEN[0], CITIZEN[1], CITIZEN[5]
OFFICER_EMAIL = "officer.ubnd-xa-an-binh@demo.civicore.invalid"
# The smallest PDF a browser would upload: header, one object, trailer.
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _totp(secret: str) -> str:
    if time.time() % 30 > 25:
        # Too close to the next step: the code could expire before the form is submitted.
        time.sleep(30 - time.time() % 30 + 0.1)
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def _login(page: Any, base: str, email: str, secret: str) -> None:
    cache.clear()  # one-time codes are single use; each test login is a new one
    page.goto(f"{base}/accounts/login/")
    assert_accessible(page, "login")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", demo.DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector("input[name=code]")
    assert_accessible(page, "second factor")
    page.fill("input[name=code]", _totp(secret))
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))


def _run_worker() -> None:
    """Run due jobs the way `civicore worker` does, outside the browser's event loop."""
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(jobs.work(once=True)))
    thread.start()
    thread.join(timeout=60)
    assert done and done[0] >= 1


def _click_and_wait(page: Any, selector: str) -> None:
    """Click something that submits a form and wait for the next page."""
    with page.expect_navigation():
        page.click(selector)


def test_citizen_applies_officer_decides_citizen_verifies(browser, live_server, signing_dir, tmp_path: Path):
    demo.load()
    base = live_server.url
    citizen = browser.new_context(locale="vi-VN").new_page()
    officer = browser.new_context(locale="vi-VN").new_page()

    # Citizen: log in with password and TOTP, find the service without typing diacritics.
    _login(citizen, base, CITIZEN_EMAIL, CITIZEN_SECRET)
    assert_accessible(citizen, "home")
    citizen.goto(f"{base}/services/?q=dang+ky+khai+sinh")
    assert_accessible(citizen, "search results")
    citizen.click("text=Đăng ký khai sinh")
    assert_accessible(citizen, "service detail")
    _click_and_wait(citizen, "form[action='/applications/start/birth-registration/'] button[type=submit]")
    citizen.wait_for_selector("#application-form")
    assert_accessible(citizen, "application form")

    # Pre-filled from the verified profile, with its source shown.
    assert citizen.input_value("#field-applicant_full_name") == CITIZEN_NAME
    assert "Bộ Công an" in citizen.inner_text("#field-applicant_full_name-source")

    # A draft survives leaving the page.
    citizen.fill("#field-child_full_name", "Nguyễn Thị Hoa")
    _click_and_wait(citizen, "button[value=save]")
    citizen.reload()
    assert citizen.input_value("#field-child_full_name") == "Nguyễn Thị Hoa"

    # A wrong answer is explained next to its field, in Vietnamese.
    citizen.click("label[for=field-relationship_to_child-1]")
    citizen.click("label[for=field-child_gender-2]")
    citizen.fill("#field-child_place_of_birth", "Trạm y tế xã An Bình")
    citizen.fill("#field-mother_full_name", "Trần Thị Lan")
    _click_and_wait(citizen, "button[value=submit]")
    citizen.wait_for_selector("#error-summary")
    assert_accessible(citizen, "form with errors")
    assert citizen.is_visible("#field-child_date_of_birth-error")

    citizen.fill("#field-child_date_of_birth", "2026-11-20")
    _click_and_wait(citizen, "button[value=save]")
    citizen.set_input_files(
        "#upload-birth-certificate",
        files=[{"name": "giay-chung-sinh.pdf", "mimeType": "application/pdf", "buffer": PDF}],
    )
    _click_and_wait(citizen, "form:has(#upload-birth-certificate) button[type=submit]")
    citizen.wait_for_selector("text=giay-chung-sinh.pdf")
    _click_and_wait(citizen, "button[value=submit]")
    citizen.wait_for_selector("#receipt-reference")
    assert_accessible(citizen, "receipt")
    reference = citizen.inner_text("#receipt-reference").strip()
    application = Application.objects.get(reference=reference)

    # Officer: the case is in the inbox; claim it and ask for more information.
    _login(officer, base, OFFICER_EMAIL, demo.OFFICER_SECRET)
    officer.goto(f"{base}/office/")
    assert_accessible(officer, "case inbox")
    officer.click(f"text={reference}")
    assert_accessible(officer, "case detail")
    _click_and_wait(officer, "#action-claim")
    officer.fill("#request-message", "Vui lòng bổ sung giấy chứng nhận kết hôn của cha mẹ.")
    _click_and_wait(officer, "#action-request-info")
    officer.wait_for_selector("text=Vui lòng bổ sung")

    # Citizen: told in the inbox, answers with a document, the case resumes.
    citizen.goto(f"{base}/inbox/")
    assert_accessible(citizen, "inbox")
    assert reference in citizen.inner_text("main")
    citizen.goto(f"{base}/applications/{application.public_id}/")
    assert "giấy chứng nhận kết hôn" in citizen.inner_text("#info-request-message")
    assert_accessible(citizen, "information request")
    citizen.fill("#respond-message", "Tôi gửi kèm giấy chứng nhận kết hôn.")
    citizen.select_option("#respond-requirement", "marriage-certificate")
    citizen.set_input_files(
        "#respond-file", files=[{"name": "ket-hon.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    _click_and_wait(citizen, "form[action$='/respond/'] button[type=submit]")
    citizen.wait_for_selector("#case-state")
    application.case.refresh_from_db()
    assert application.case.state == "in_review"

    # Officer approves; the worker signs the result.
    officer.goto(f"{base}/office/cases/{application.case.pk}/")
    _click_and_wait(officer, "#action-approve")
    officer.wait_for_selector("#case-state")
    _run_worker()

    # Citizen downloads the signed PDF and verifies it.
    citizen.goto(f"{base}/applications/{application.public_id}/")
    assert_accessible(citizen, "approved application")
    with citizen.expect_download() as download_info:
        citizen.click("#result-download")
    pdf_path = tmp_path / "result.pdf"
    download_info.value.save_as(pdf_path)
    assert pdf_path.read_bytes().startswith(b"%PDF")

    citizen.goto(f"{base}/verify/")
    assert_accessible(citizen, "verify")
    citizen.set_input_files("input[type=file]", str(pdf_path))
    _click_and_wait(citizen, "form:has(input[type=file]) button[type=submit]")
    assert citizen.get_attribute("#verification-result", "data-status") == "valid"

    tampered = bytearray(pdf_path.read_bytes())
    index = tampered.find(b"/Title")
    tampered[index + 8] ^= 0x01
    citizen.goto(f"{base}/verify/")
    citizen.set_input_files(
        "input[type=file]",
        files=[{"name": "t.pdf", "mimeType": "application/pdf", "buffer": bytes(tampered)}],
    )
    _click_and_wait(citizen, "form:has(input[type=file]) button[type=submit]")
    assert citizen.get_attribute("#verification-result", "data-status") == "tampered"

    # Citizen sees that the officer viewed their data.
    citizen.goto(f"{base}/my-data/")
    assert_accessible(citizen, "who viewed my data")
    assert "ubnd" in citizen.inner_text("main").lower() or "Ủy ban" in citizen.inner_text("main")
