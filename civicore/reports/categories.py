"""Loading report categories from a YAML file (civicore/reports/data/categories.yaml is the
default set). Loading is idempotent: a category is found by its code and updated in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.db import transaction
from django.utils.translation import gettext as _

from civicore.core.errors import ValidationFailed
from civicore.reports.services import category_upsert

DEFAULT_FILE = Path(__file__).resolve().parent / "data" / "categories.yaml"
REQUIRED = ("code", "name_vi", "agency")


def _entries(document: Any) -> list[dict[str, Any]]:
    entries = document.get("categories") if isinstance(document, dict) else document
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise ValidationFailed(_("The file must hold a list of categories."), code="invalid_file")
    for number, entry in enumerate(entries, start=1):
        missing = [key for key in REQUIRED if not entry.get(key)]
        if missing:
            raise ValidationFailed(
                _("Category %(number)d lacks: %(fields)s.")
                % {"number": number, "fields": ", ".join(missing)},
                code="invalid_file",
            )
    return entries


@transaction.atomic
def categories_load(path: Path = DEFAULT_FILE) -> tuple[int, int]:
    """Create or update every category in the file; returns (created, updated). All or nothing."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            _("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc}, code="invalid_file"
        ) from exc
    except yaml.YAMLError as exc:
        raise ValidationFailed(
            _("%(path)s is not valid YAML.") % {"path": path}, code="invalid_file"
        ) from exc
    created = updated = 0
    for entry in _entries(document):
        _category, was_created = category_upsert(
            code=str(entry["code"]),
            name_vi=str(entry["name_vi"]),
            name_en=str(entry.get("name_en", "")),
            agency_code=str(entry["agency"]),
            sla_days=int(entry.get("sla_days", 5)),
            description_vi=str(entry.get("description_vi", "")),
            description_en=str(entry.get("description_en", "")),
            keywords=str(entry.get("keywords", "")),
            active=bool(entry.get("active", True)),
        )
        created += int(was_created)
        updated += int(not was_created)
    return created, updated
