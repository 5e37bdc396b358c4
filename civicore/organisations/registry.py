"""The national business registry, behind a Protocol: who a registration number belongs to and
who its legal representative is. The embedded implementation answers from a small file of demo
businesses plus entries added in-process (tests); a deployment points BUSINESS_REGISTRY at a
client of the National Business Registration Portal implementing the same Protocol."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import ClassVar, Protocol

import yaml
from django.conf import settings
from django.utils.module_loading import import_string

DEFAULT = "civicore.organisations.registry.FileBusinessRegistry"
DEMO_FILE = Path(__file__).resolve().parent / "data" / "business_registry.yaml"


@dataclass(frozen=True)
class BusinessRecord:
    registration_number: str
    name: str
    address: str
    representative_national_id: str
    active: bool = True


class BusinessRegistry(Protocol):
    source: str
    """The register's name, recorded on each organisation verified against it."""

    def lookup(self, registration_number: str) -> BusinessRecord | None:
        """The record for a canonical registration number, or None when there is none."""


class FileBusinessRegistry:
    source = "Cơ sở dữ liệu quốc gia về đăng ký doanh nghiệp"
    added: ClassVar[dict[str, BusinessRecord]] = {}

    def __init__(self) -> None:
        self._records = {
            str(row["registration_number"]): BusinessRecord(
                registration_number=str(row["registration_number"]),
                name=row["name"],
                address=row.get("address", ""),
                representative_national_id=str(row["representative_national_id"]),
                active=bool(row.get("active", True)),
            )
            for row in yaml.safe_load(DEMO_FILE.read_text(encoding="utf-8")) or []
        }

    def lookup(self, registration_number: str) -> BusinessRecord | None:
        return self.added.get(registration_number) or self._records.get(registration_number)

    @classmethod
    def add(cls, record: BusinessRecord) -> None:
        cls.added[record.registration_number] = record

    @classmethod
    def forget_added(cls) -> None:
        cls.added.clear()


@cache
def business_registry() -> BusinessRegistry:
    return import_string(getattr(settings, "BUSINESS_REGISTRY", DEFAULT))()
