"""Writes to the catalogue: importing procedures, loading service definitions, demo agencies.

A loaded definition is never edited in place: a changed definition must carry a higher version
number, so every application stays tied to the exact form it was filed under.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from civicore.agencies.models import Agency
from civicore.catalogue.definitions import checksum, validate_definition
from civicore.catalogue.models import Procedure, Service, ServiceVersion
from civicore.catalogue.search import search_text
from civicore.core.errors import Conflict, ValidationFailed

DATA_DIR = Path(__file__).resolve().parent / "data"
PROCEDURES_FILE = DATA_DIR / "vn-tthc.json"
AGENCIES_FILE = DATA_DIR / "agencies.yaml"
SERVICES_DIR = DATA_DIR / "services"

_PROCEDURE_FIELDS = (
    "name_vi",
    "name_en",
    "level",
    "field",
    "agency_name",
    "processing_time",
    "fee_text",
    "documents",
    "legal_basis",
    "result",
    "audience",
    "eligibility",
    "source",
)


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def procedure_search_text(procedure: Procedure) -> str:
    return search_text(
        [procedure.code, procedure.name_vi, procedure.name_en, procedure.field, procedure.agency_name]
    )


_LIST_FIELDS = ("documents", "legal_basis")


@transaction.atomic
def procedures_import(*, path: Path | str = PROCEDURES_FILE) -> ImportResult:
    """Upsert procedures by code; running it twice changes nothing the second time."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    records = data["procedures"] if isinstance(data, dict) else data
    existing = {p.code: p for p in Procedure.objects.all()}
    created = updated = unchanged = 0
    for record in records:
        code = str(record["code"]).strip()
        values = {
            name: record.get(name) or ([] if name in _LIST_FIELDS else "") for name in _PROCEDURE_FIELDS
        }
        procedure = existing.get(code)
        if procedure is None:
            procedure = Procedure(code=code, **values)
            created += 1
        elif all(getattr(procedure, name) == value for name, value in values.items()):
            if procedure.search_text == procedure_search_text(procedure):
                unchanged += 1
                continue
            updated += 1
        else:
            for name, value in values.items():
                setattr(procedure, name, value)
            updated += 1
        procedure.search_text = procedure_search_text(procedure)
        procedure.full_clean(exclude=["agency"])
        procedure.save()
        existing[code] = procedure
    return ImportResult(created=created, updated=updated, unchanged=unchanged)


def service_search_text(service: Service) -> str:
    agency = service.agency
    return search_text(
        [
            service.code,
            service.name_vi,
            service.name_en,
            service.summary_vi,
            service.summary_en,
            agency.name_vi if agency else "",
            agency.name_en if agency else "",
            service.procedure.code if service.procedure else "",
        ]
    )


def _reference_errors(definition: dict[str, Any]) -> tuple[list[str], Agency | None, Procedure | None]:
    errors = []
    agency = Agency.objects.filter(code=definition["agency"]).first()
    if agency is None:
        errors.append(f"agency: no agency with code '{definition['agency']}'")
    procedure = None
    if definition.get("procedure"):
        procedure = Procedure.objects.filter(code=definition["procedure"]).first()
        if procedure is None:
            errors.append(f"procedure: no catalogue procedure with code '{definition['procedure']}'")
    return errors, agency, procedure


@dataclass(frozen=True)
class LoadOutcome:
    version: ServiceVersion
    action: str  # "created" (new service), "updated" (new version) or "unchanged"


@transaction.atomic
def service_load_outcome(*, definition: dict[str, Any]) -> LoadOutcome:
    """service_load, also saying whether anything changed (the command reports it)."""
    errors = validate_definition(definition)
    if errors:
        raise ValidationFailed(
            "The service definition is not valid.", code="invalid_definition", details=errors
        )
    reference_errors, agency, procedure = _reference_errors(definition)
    if reference_errors:
        raise ValidationFailed(
            "The service definition is not valid.", code="invalid_definition", details=reference_errors
        )
    assert agency is not None  # noqa: S101 - _reference_errors reports a missing agency
    digest = checksum(definition)
    number = definition["version"]

    service = Service.objects.select_for_update().filter(code=definition["code"]).first()
    action = "updated"
    if service is None:
        service = Service(code=definition["code"], agency=agency)
        action = "created"
    else:
        same = service.versions.filter(number=number).first()
        if same is not None:
            if same.checksum == digest:
                return LoadOutcome(version=same, action="unchanged")
            raise Conflict(
                f"Version {number} of {service.code} is already loaded with different content; "
                "give the changed definition a higher version number.",
                code="version_exists",
                details={"service": service.code, "version": number},
            )
        latest = service.versions.order_by("-number").first()
        if latest is not None and number < latest.number:
            raise Conflict(
                f"{service.code} is already at version {latest.number}; version {number} would go backwards.",
                code="version_exists",
                details={"service": service.code, "version": number, "latest": latest.number},
            )

    service.agency = agency
    service.procedure = procedure
    service.name_vi = definition["name"]["vi"]
    service.name_en = definition["name"]["en"]
    service.summary_vi = definition["summary"]["vi"]
    service.summary_en = definition["summary"]["en"]
    service.search_text = service_search_text(service)
    service.full_clean(exclude=["current_version"])
    service.save()
    version = ServiceVersion.objects.create(
        service=service, number=number, definition=definition, checksum=digest
    )
    service.current_version = version
    service.save(update_fields=["current_version"])
    return LoadOutcome(version=version, action=action)


def service_load(*, definition: dict[str, Any]) -> ServiceVersion:
    """Validate a definition and make it the service's current version (idempotent)."""
    return service_load_outcome(definition=definition).version


@transaction.atomic
def agencies_load(*, path: Path | str = AGENCIES_FILE) -> int:
    """Upsert agencies by code from a YAML list; returns how many were read."""
    rows = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    if isinstance(rows, dict):
        rows = rows.get("agencies", [])
    for row in rows:
        agency, _ = Agency.objects.get_or_create(code=row["code"], defaults={"name_vi": row["name_vi"]})
        agency.name_vi = row["name_vi"]
        agency.name_en = row.get("name_en", "")
        agency.level = row.get("level", Agency.Level.PROVINCE)
        agency.email = row.get("email", "")
        agency.address = row.get("address", "")
        agency.full_clean(exclude=["parent"])
        agency.save()
    # Agency names feed the services' search text, so refresh it when names change.
    for service in Service.objects.select_related("agency", "procedure"):
        fresh = service_search_text(service)
        if fresh != service.search_text:
            Service.objects.filter(pk=service.pk).update(search_text=fresh)
    return len(rows)
