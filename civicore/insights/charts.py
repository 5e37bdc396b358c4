"""Bar charts of monthly figures, drawn on the server as SVG: no script, no inline style (the
site's CSP), named for screen readers by role="img" with a <title> and a <desc>, and always shown
beside a table of the same numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

WIDTH, HEIGHT = 640, 220
LEFT, BOTTOM, TOP = 12, 32, 20


def _shown(value: float | None, percent: bool) -> str:
    if value is None:
        return "—"
    if percent:
        return f"{value:g}%"
    return f"{value:,.0f}".replace(",", " ")


def month_bars(
    *, chart_id: str, title: str, bars: Sequence[tuple[dt.date, float | None]], percent: bool = False
) -> SafeString:
    """One vertical bar per month, labelled MM/YYYY; a month with no figure has no bar."""
    ident = escape(chart_id)
    described = "; ".join(f"{month:%m/%Y}: {_shown(value, percent)}" for month, value in bars)
    top = 100.0 if percent else max([v for _m, v in bars if v is not None] + [1.0])
    slot = (WIDTH - 2 * LEFT) / max(len(bars), 1)
    parts = [
        f'<svg class="insights-chart" id="{ident}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(described or _("No figures yet."))}</desc>',
        '<g aria-hidden="true">',
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - LEFT}" y2="{HEIGHT - BOTTOM}" '
        'stroke="#565c65" stroke-width="1"/>',
    ]
    room = HEIGHT - BOTTOM - TOP
    for index, (month, value) in enumerate(bars):
        x = LEFT + index * slot
        if value is not None:
            height = max(room * value / top, 1.0 if value else 0.0)
            parts.append(
                f'<rect x="{x + slot * 0.15:.1f}" y="{HEIGHT - BOTTOM - height:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{height:.1f}" fill="#005ea2"/>'
                f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - BOTTOM - height - 4:.1f}" text-anchor="middle" '
                f'font-size="11" fill="#1b1b1b">{escape(_shown(value, percent))}</text>'
            )
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" '
            f'fill="#1b1b1b">{month:%m/%y}</text>'
        )
    parts.append("</g></svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped
