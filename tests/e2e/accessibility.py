"""axe-core checks for WCAG 2.2 A/AA on the page a test is looking at (defined with the apps' page
tests, in civicore.core.tests.accessibility)."""

from __future__ import annotations

from civicore.core.tests.accessibility import WCAG_TAGS, assert_accessible

__all__ = ["WCAG_TAGS", "assert_accessible"]
