"""The public transparency page in Chromium, checked with axe-core (WCAG 2.2 AA) in both languages,
with heads and entries on more than one page."""

from __future__ import annotations

from typing import Any

import pytest

from civicore.core.tests.accessibility import axe_in_chromium
from civicore.transparency import services
from civicore.transparency.tests.test_store import pairs


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_transparency_page_passes_axe(live_server: Any) -> None:
    for start in range(0, 50, 2):
        services.log_append(entries=pairs(start, 2))
        services.tree_head_sign_now()
    base = live_server.url
    found = axe_in_chromium(
        base_url=base,
        pages={"log": f"{base}/transparency/", "older": f"{base}/transparency/?entries=2&heads=2"},
    )
    assert len(found) == 2 * 2
