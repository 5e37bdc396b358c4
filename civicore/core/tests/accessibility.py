"""axe-core checks for WCAG 2.2 A/AA, on the page a browser test is looking at or on a set of pages
visited in Chromium in each of the site's languages. One list of WCAG tags and one way of reporting
what axe-core found, for the journeys under tests/e2e and the apps' own page tests alike."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from django.conf import settings

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
LOCALES = {"vi": "vi-VN", "en": "en-GB"}
BROWSER_TIMEOUT = 300  # seconds for every page and action of one call

# check(name): run axe-core on the page as it is now and keep what it found under `name`.
Check = Callable[[str], None]
# action(page, check): drives the page further (a form sent with an error, another page) and checks
# what it shows; run once per language after the pages.
Action = Callable[[Any, Check], None]


@functools.cache
def _axe() -> Any:
    from axe_playwright_python.sync_playwright import Axe

    return Axe()


def violations_of(page: Any) -> list[dict[str, Any]]:
    """What axe-core finds against WCAG 2.2 A/AA on the page."""
    results = _axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_TAGS}})
    return list(results.response["violations"])


def summary(violations: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per violation: the rule, its impact, what it asks for and the first elements."""
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
    ]


def assert_accessible(page: Any, label: str) -> None:
    violations = violations_of(page)
    assert not violations, f"axe-core found problems on {label} ({page.url}):\n" + "\n".join(
        summary(violations)
    )


def chromium_path() -> str:
    """Debian's Chromium; a browser test fails rather than skips without it."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        pytest.fail("Chromium is required for browser tests: apt-get install chromium")
    return path


def axe_in_chromium(
    *,
    base_url: str,
    pages: Mapping[str, str],
    session: str | None = None,
    languages: Sequence[str] = ("vi", "en"),
    actions: Sequence[Action] = (),
) -> dict[str, list[dict[str, Any]]]:
    """Visit each of `pages` (name -> URL) in Chromium in each language, signed in with the
    `session` cookie if given and the language chosen by cookie, and check each with axe-core;
    then run `actions` on the same tab. Each page must be shown at its own URL and in the language
    asked for. Asserts that nothing was found and returns the checks, "language:name" -> violations
    (empty), for the caller to count."""
    sync_api = pytest.importorskip("playwright.sync_api")
    pytest.importorskip("axe_playwright_python.sync_playwright")
    chromium = chromium_path()
    found: dict[str, list[dict[str, Any]]] = {}
    failures: list[BaseException] = []

    def visit(browser: Any, language: str) -> None:
        context = browser.new_context(locale=LOCALES.get(language, language))
        cookies = [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": base_url}]
        if session is not None:
            cookies.append({"name": settings.SESSION_COOKIE_NAME, "value": session, "url": base_url})
        context.add_cookies(cookies)
        page = context.new_page()

        def check(name: str) -> None:
            found[f"{language}:{name}"] = violations_of(page)

        for name, url in pages.items():
            page.goto(url)
            assert page.url == url, f"{name} went to {page.url}"
            assert page.locator("html").get_attribute("lang") == language, f"{name} is not in {language}"
            check(name)
        for action in actions:
            action(page, check)
        context.close()

    def drive() -> None:
        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
                )
                try:
                    for language in languages:
                        visit(browser, language)
                finally:
                    browser.close()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(exc)

    # Playwright's sync API refuses to run where an asyncio loop is running (other browser tests in
    # the same process leave one): the browser is driven from a thread of its own.
    worker = threading.Thread(target=drive)
    worker.start()
    worker.join(BROWSER_TIMEOUT)
    assert not worker.is_alive(), "the browser did not finish"
    if failures:
        raise failures[0]
    problems = {name: summary(violations) for name, violations in found.items() if violations}
    assert not problems, problems
    return found
