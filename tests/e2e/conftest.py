"""Browser tests: Playwright driving Debian's Chromium against a live test server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# The browser's event loop runs in this thread; test code still talks to the database here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is required for browser tests: apt-get install chromium")
    with playwright_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture
def signing_dir(tmp_path: Any, settings: Any) -> Any:
    from civicore.credentials.services import signing_setup

    directory = tmp_path / "signing"
    settings.SIGNING_DIR = directory
    signing_setup(directory=directory)
    return directory


VNPAY_TMN = "CIVICORE"
VNPAY_SECRET = "e2e-secret-0123456789abcdefghijkl"  # noqa: S105 - the sandbox's, for these tests only


@pytest.fixture
def vnpay_sandbox(live_server: Any, settings: Any) -> Iterator[tuple[str, Any]]:
    """The local VNPAY, calling back the live site, and the site configured to pay and refund
    through it: its base URL and the sandbox."""
    from civicore.payments.sandbox import VnpaySandbox

    sandbox = VnpaySandbox(
        tmn_code=VNPAY_TMN,
        hash_secret=VNPAY_SECRET,
        ipn_url=f"{live_server.url}/payments/gateways/vnpay/callback/",
        ipn_schedule=(0.1, 0.5, 1.0),
    )
    base, stop = sandbox.start_in_thread()
    settings.VNPAY_TMN_CODE = VNPAY_TMN
    settings.VNPAY_HASH_SECRET = VNPAY_SECRET
    settings.VNPAY_PAYMENT_URL = base + "/paymentv2/vpcpay.html"
    settings.VNPAY_API_URL = base + "/merchant_webapi/api/transaction"
    yield base, sandbox
    stop()
