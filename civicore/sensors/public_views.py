"""The public environment page (/environment/, no login): what the city's sensors measured over
the last 24 hours, per district (or group), from the hourly rollups.

Only aggregates are public: the area, how many sensors it has, and the value over the day; no
device identifiers, positions, credentials, rejections or rules.
"""

from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from civicore.sensors import charts, selectors


@require_GET
def environment(request: HttpRequest) -> HttpResponse:
    areas = selectors.public_areas()
    area = str(request.GET.get("area", "")).strip()[:120]
    unknown = bool(area) and area not in areas
    quantities = [] if unknown else selectors.public_environment(area=area)
    now = timezone.now()
    drawn = []
    for index, item in enumerate(quantities):
        if item.aggregate == "sum":
            what = _("%(quantity)s, total over the last 24 hours") % {"quantity": item.label}
            hourly_title = _("%(quantity)s, hour by hour (total per hour)") % {"quantity": item.label}
        else:
            what = _("%(quantity)s, average over the last 24 hours") % {"quantity": item.label}
            hourly_title = _("%(quantity)s, hour by hour (hourly average)") % {"quantity": item.label}
        where = area or _("the whole city")
        hourly_title = f"{hourly_title} · {where}"
        drawn.append(
            {
                "item": item,
                "title": what,
                "hourly_title": hourly_title,
                "bars": charts.bar_chart(
                    chart_id=f"env-{index}-areas",
                    title=what,
                    bars=[(row.area, row.value) for row in item.areas],
                    unit=item.unit,
                ),
                "hourly": charts.line_chart(
                    chart_id=f"env-{index}-hourly",
                    title=hourly_title,
                    points=item.hourly,
                    start=now - selectors.PUBLIC_WINDOW,
                    end=now,
                    unit=item.unit,
                    bucket=timedelta(hours=1),
                ),
                "areas": [
                    {
                        "area": row.area,
                        "devices": row.devices,
                        "value": charts.number(row.value),
                        "minimum": charts.number(row.minimum),
                        "maximum": charts.number(row.maximum),
                    }
                    for row in item.areas
                ],
                "hours": [
                    {"time": point.time, "value": charts.number(point.value)}
                    for point in reversed(item.hourly)
                ],
            }
        )
    context = {
        "areas": areas,
        "area": area,
        "unknown_area": area if unknown else "",
        "quantities": drawn,
    }
    return render(request, "sensors/public/environment.html", context, status=400 if unknown else 200)
