"""Reading the open data catalogue: datasets, resources and publishers as CKAN's Action API
shapes them, and as DCAT-AP describes them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.db.models import Count, Prefetch, QuerySet
from django.urls import reverse
from django.utils.translation import get_language

from civicore.opendata.models import Dataset, Resource

PLATFORM = "civicore"
LICENSES = {
    "cc-by-4.0": ("Creative Commons Attribution 4.0", "https://creativecommons.org/licenses/by/4.0/"),
}
_ORG_NAMESPACE = uuid.UUID("6a1d3b52-4a3e-4a0e-9c55-2f7f3a0d2c10")


def _english() -> bool:
    return (get_language() or "vi").startswith("en")


def site_url() -> str:
    return str(getattr(settings, "SITE_URL", "")).rstrip("/")


def datasets() -> QuerySet[Dataset]:
    return (
        Dataset.objects.select_related("agency")
        .prefetch_related(Prefetch("resources", queryset=Resource.objects.order_by("position")))
        .order_by("name")
    )


def dataset_get(name_or_id: str) -> Dataset | None:
    if not isinstance(name_or_id, str) or not 0 < len(name_or_id) <= 100:
        return None
    query = datasets()
    try:
        return query.get(id=uuid.UUID(name_or_id))
    except (ValueError, Dataset.DoesNotExist):
        return query.filter(name=name_or_id).first()


def resource_get(resource_id: Any) -> Resource | None:
    try:
        key = uuid.UUID(str(resource_id))
    except ValueError:
        return None
    return Resource.objects.select_related("dataset", "dataset__agency").filter(id=key).first()


# Publishers: the platform itself, and each agency that owns a dataset.


def organizations() -> list[dict[str, Any]]:
    counts: dict[str | None, int] = {
        row["agency__code"]: row["n"]
        for row in Dataset.objects.values("agency__code").annotate(n=Count("id")).order_by()
    }
    orgs = [_platform_org(counts.get(None, 0))]
    from civicore.agencies.models import Agency

    for agency in Agency.objects.filter(code__in=[c for c in counts if c]).order_by("code"):
        orgs.append(_agency_org(agency, counts[agency.code]))
    return orgs


def organization_get(name_or_id: Any) -> dict[str, Any] | None:
    return next((o for o in organizations() if name_or_id in (o["name"], o["id"])), None)


def _platform_org(count: int) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(_ORG_NAMESPACE, PLATFORM)),
        "name": PLATFORM,
        "title": "Civicore",
        "display_name": "Civicore",
        "description": "Nền tảng chính phủ số Civicore"
        if not _english()
        else "The Civicore digital government platform",
        "type": "organization",
        "is_organization": True,
        "state": "active",
        "approval_status": "approved",
        "image_url": "",
        "package_count": count,
    }


def _agency_org(agency: Any, count: int) -> dict[str, Any]:
    title = (agency.name_en or agency.name_vi) if _english() else agency.name_vi
    return {
        "id": str(uuid.uuid5(_ORG_NAMESPACE, f"agency:{agency.code}")),
        "name": agency.code,
        "title": title,
        "display_name": title,
        "description": "",
        "type": "organization",
        "is_organization": True,
        "state": "active",
        "approval_status": "approved",
        "image_url": "",
        "package_count": count,
    }


def _org_of(dataset: Dataset) -> dict[str, Any]:
    org = _agency_org(dataset.agency, 0) if dataset.agency_id else _platform_org(0)
    org.pop("package_count")
    return org


def _utc(moment: Any) -> str:
    """CKAN's timestamps: UTC, without an offset."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat()


def download_url(resource: Resource, fmt: str = "csv") -> str:
    path = reverse("opendata:download", args=[resource.dataset.name, resource.id, fmt])
    return site_url() + path


def resource_dict(resource: Resource) -> dict[str, Any]:
    english = _english()
    return {
        "id": str(resource.id),
        "package_id": str(resource.dataset_id),
        "name": resource.name_en if english else resource.name_vi,
        "name_translated": {"vi": resource.name_vi, "en": resource.name_en},
        "description": resource.description_en if english else resource.description_vi,
        "format": "CSV",
        "mimetype": "text/csv",
        "url": download_url(resource),
        "url_type": "datastore",
        "datastore_active": True,
        "position": resource.position,
        "state": "active",
        "created": _utc(resource.created_at),
        "last_modified": _utc(resource.modified_at),
        "metadata_modified": _utc(resource.modified_at),
        "size": None,
        "rows": resource.row_count,
        "suppressed_cells": resource.suppressed_cells,
    }


def package_dict(dataset: Dataset) -> dict[str, Any]:
    english = _english()
    license_title, license_url = LICENSES.get(dataset.license_id, (dataset.license_id, ""))
    resources = [resource_dict(r) for r in dataset.resources.all()]
    org = _org_of(dataset)
    return {
        "id": str(dataset.id),
        "name": dataset.name,
        "title": dataset.title_en if english else dataset.title_vi,
        "title_translated": {"vi": dataset.title_vi, "en": dataset.title_en},
        "notes": dataset.notes_en if english else dataset.notes_vi,
        "notes_translated": {"vi": dataset.notes_vi, "en": dataset.notes_en},
        "type": "dataset",
        "state": "active",
        "private": False,
        "license_id": dataset.license_id,
        "license_title": license_title,
        "license_url": license_url,
        "metadata_created": _utc(dataset.created_at),
        "metadata_modified": _utc(dataset.modified_at),
        "owner_org": org["id"],
        "organization": org,
        "author": None,
        "maintainer": org["title"],
        "url": site_url() + reverse("opendata:dataset", args=[dataset.name]),
        "tags": [{"name": t, "display_name": t, "state": "active"} for t in dataset.tags],
        "num_tags": len(dataset.tags),
        "groups": [],
        "extras": [
            {"key": "frequency", "value": dataset.frequency},
            {"key": "theme", "value": dataset.theme},
        ],
        "resources": resources,
        "num_resources": len(resources),
    }


def publisher(dataset: Dataset) -> str:
    """The CKAN organization name of the dataset's publisher."""
    return dataset.agency.code if dataset.agency is not None else PLATFORM


def search_text(dataset: Dataset) -> str:
    return " ".join(
        [dataset.name, dataset.title_vi, dataset.title_en, dataset.notes_vi, dataset.notes_en, *dataset.tags]
    ).casefold()


# DCAT-AP (https://semiceu.github.io/DCAT-AP/) as JSON-LD.

_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}


def dcat_dataset(dataset: Dataset) -> dict[str, Any]:
    base = site_url()
    page = base + reverse("opendata:dataset", args=[dataset.name])
    org = _org_of(dataset)
    node: dict[str, Any] = {
        "@id": page,
        "@type": "dcat:Dataset",
        "dct:identifier": str(dataset.id),
        "dct:title": [
            {"@value": dataset.title_vi, "@language": "vi"},
            {"@value": dataset.title_en, "@language": "en"},
        ],
        "dct:description": [
            {"@value": dataset.notes_vi, "@language": "vi"},
            {"@value": dataset.notes_en, "@language": "en"},
        ],
        "dcat:keyword": list(dataset.tags),
        "dct:issued": {"@value": dataset.created_at.isoformat(), "@type": "xsd:dateTime"},
        "dct:modified": {"@value": dataset.modified_at.isoformat(), "@type": "xsd:dateTime"},
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": org["title"]},
        "dcat:landingPage": {"@id": page},
        "dct:accrualPeriodicity": {
            "@id": "http://publications.europa.eu/resource/authority/frequency/"
            + {"hourly": "HOURLY", "daily": "DAILY", "monthly": "MONTHLY"}.get(dataset.frequency, "IRREG")
        },
        "dcat:distribution": [],
    }
    if dataset.theme:
        node["dcat:theme"] = {"@id": dataset.theme}
    license_url = LICENSES.get(dataset.license_id, ("", ""))[1]
    formats = (
        ("csv", "https://www.iana.org/assignments/media-types/text/csv", "CSV"),
        ("parquet", "https://www.iana.org/assignments/media-types/application/vnd.apache.parquet", "PARQUET"),
    )
    for resource in dataset.resources.all():
        for fmt, media_type, file_type in formats:
            node["dcat:distribution"].append(
                {
                    "@id": download_url(resource, fmt),
                    "@type": "dcat:Distribution",
                    "dct:title": [
                        {"@value": resource.name_vi, "@language": "vi"},
                        {"@value": resource.name_en, "@language": "en"},
                    ],
                    "dcat:accessURL": {"@id": page},
                    "dcat:downloadURL": {"@id": download_url(resource, fmt)},
                    "dcat:mediaType": {"@id": media_type},
                    "dct:format": {
                        "@id": "http://publications.europa.eu/resource/authority/file-type/" + file_type
                    },
                    "dct:modified": {"@value": resource.modified_at.isoformat(), "@type": "xsd:dateTime"},
                    **({"dct:license": {"@id": license_url}} if license_url else {}),
                }
            )
    return node


def dcat_catalog() -> dict[str, Any]:
    base = site_url()
    return {
        "@context": _CONTEXT,
        "@id": base + reverse("opendata:catalog_jsonld"),
        "@type": "dcat:Catalog",
        "dct:title": [
            {"@value": "Dữ liệu mở Civicore", "@language": "vi"},
            {"@value": "Civicore open data", "@language": "en"},
        ],
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": "Civicore"},
        "foaf:homepage": {"@id": base + reverse("opendata:index")},
        "dcat:dataset": [dcat_dataset(d) for d in datasets()],
    }
