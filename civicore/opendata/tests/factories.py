"""Open data test data: a resource with rows of every column type, and live applications."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from civicore.opendata import datastore
from civicore.opendata.datastore import Field
from civicore.opendata.models import Dataset, Resource

FIELDS = [
    Field("district", "text", "Quận", "District"),
    Field("category", "text", "Loại", "Category"),
    Field("count", "int", "Số lượng", "Count"),
    Field("share", "numeric", "Tỉ lệ", "Share"),
    Field("day", "date", "Ngày", "Day"),
    Field("open", "bool", "Đang mở", "Open"),
]
DISTRICTS = ["Ba Đình", "Hoàn Kiếm", "Đống Đa", "Cầu Giấy"]
CATEGORIES = ["streetlight", "pothole", "flooding"]


def row(n: int) -> tuple[Any, ...]:
    return (
        DISTRICTS[n % 4],
        CATEGORIES[n % 3],
        n,
        round(n / 7, 3),
        dt.date(2026, 1, 1) + dt.timedelta(days=n % 300),
        n % 2 == 0,
    )


def make_resource(rows: int = 250, name: str = "sample") -> Resource:
    dataset = Dataset.objects.create(
        name=name,
        generator=f"test-{name}",
        title_vi="Dữ liệu mẫu",
        title_en="Sample data",
        notes_vi="Dùng cho kiểm thử",
        notes_en="For tests",
        tags=["sample"],
    )
    resource = Resource.objects.create(
        dataset=dataset,
        key="rows",
        name_vi="Các dòng",
        name_en="Rows",
        fields=[f.as_dict() for f in FIELDS],
        modified_at=timezone.now(),
    )
    resource.row_count = datastore.replace_rows(resource, FIELDS, (row(n) for n in range(1, rows + 1)))
    resource.save(update_fields=["row_count"])
    return resource
