"""The wallet, sharing and verification pages in Chromium, checked with axe-core in both languages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from civicore.core import jobs, jose
from civicore.core.tests.accessibility import Check, axe_in_chromium
from civicore.credentials.tests.factories import make_application
from civicore.vc import keys
from civicore.vc.models import Credential, PresentationCheck


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_wallet_sharing_and_verify_pass_axe(
    signing_dir: Path, live_server: Any, settings_: Any = None
) -> None:
    jose.ensure_signing_keys()
    keys.reset_cache()
    application = make_application()
    jobs.handler_for("credentials.issue")(application_id=application.pk)
    credential = Credential.objects.get(document__application=application)
    client = Client()
    client.force_login(application.applicant.user)
    base = live_server.url
    document_url = f"{base}/my-documents/{credential.public_id}/"

    def share(page: Any, check: Check) -> None:
        """Share the year of the decision and the child's name; the link, its QR code and the
        holder's list of checks are shown; the link then shows only those claims."""
        page.goto(document_url)
        page.click("form[aria-labelledby=share-heading] button[type=submit]")  # nothing chosen: errors
        page.wait_for_selector("#claims-error")
        check("share-errors")
        for value in ("decided_on/year", "result/child_full_name"):  # by their labels, as people do
            box = page.get_attribute(f"input[value='{value}']", "id")
            page.click(f"label[for={box}]")
            assert page.is_checked(f"#{box}")
        page.fill("#audience", "Ngân hàng An Bình")
        page.click("form[aria-labelledby=share-heading] button[type=submit]")
        page.wait_for_selector("section[id^=shared-] svg")
        check("shared")
        public_id = page.get_attribute("section[id^=shared-]", "id").removeprefix("shared-")
        page.goto(f"{base}/shared/{public_id}/")
        page.wait_for_selector("#verification-result[data-status=valid]")
        shown = page.inner_text("#shown-claims")
        assert "Trần Thị Ngọc Ánh" in shown and application.reference not in shown
        check("shared-link")
        token = page.request.get(f"{base}/shared/{public_id}/presentation.sd-jwt").text()
        page.goto(f"{base}/verify/")
        page.fill("#id_token", token)
        page.click("form:has(#id_token) button[type=submit]")
        page.wait_for_selector("#verification-result")
        check("verify-presentation")

    found = axe_in_chromium(
        base_url=base,
        session=client.cookies[settings.SESSION_COOKIE_NAME].value,
        pages={"wallet": f"{base}/my-documents/", "document": document_url},
        actions=[share],
    )
    assert len(found) == 2 * (2 + 4)
    assert PresentationCheck.objects.filter(verdict="valid").count() == 2
