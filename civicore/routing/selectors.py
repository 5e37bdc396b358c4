"""Reads of the routing registry: the active model (loaded once per process and re-checked against
its hash), the public list and cards, the comparison of a candidate with the active model, and the
kept training examples."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from civicore.audit import services as audit
from civicore.routing import ml
from civicore.routing.models import RoutingModel, TrainingExample

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    id: int
    sha256: str
    version: str
    model: ml.Model


_lock = threading.Lock()
_cache: dict[str, Any] = {"key": None, "loaded": None}
_refused: set[tuple[int, str]] = set()


def artifact_files(row: RoutingModel, *, with_heldout: bool = False) -> dict[str, bytes]:
    """The model directory's files as stored; the manifest is checked against the row's sha256."""
    manifest = row.manifest_text.encode()
    if ml.sha256_bytes(manifest) != row.sha256:
        raise ml.ModelIntegrityError(
            f"The manifest of model {row.version} does not match its recorded sha256: refusing to load it."
        )
    files = {ml.MANIFEST: manifest, ml.WEIGHTS: bytes(row.artifact)}
    if with_heldout:
        files[ml.HELDOUT] = (row.heldout or "").encode()
    ml.verify(files)
    return files


def load_model(row: RoutingModel) -> ml.Model:
    return ml.load_files(artifact_files(row))


def active_model() -> LoadedModel | None:
    """The active model, loaded once per process per (id, sha256); None when there is none or it
    fails its hash check (logged and audited as ai.model_refused, once per process)."""
    current = RoutingModel.objects.filter(state=RoutingModel.State.ACTIVE).values_list("id", "sha256").first()
    if current is None:
        return None
    key = (current[0], current[1])
    with _lock:
        if _cache["key"] == key:
            return _cache["loaded"]
        if key in _refused:
            return None
        row = RoutingModel.objects.get(pk=key[0])
        try:
            model = load_model(row)
        except ml.RoutingError as exc:
            _refused.add(key)
            logger.error("routing model %s refused: %s", row.version, exc)
            audit.record(
                actor=None,
                action="ai.model_refused",
                subject=row,
                details={"version": row.version, "reason": str(exc)},
            )
            return None
        loaded = LoadedModel(id=row.pk, sha256=row.sha256, version=row.version, model=model)
        _cache.update(key=key, loaded=loaded)
        return loaded


def forget_cache() -> None:
    """For tests and after activation in this process."""
    with _lock:
        _cache.update(key=None, loaded=None)
        _refused.clear()


def public_models() -> QuerySet[RoutingModel]:
    """Every registered model with its card; the large columns are left out."""
    return RoutingModel.objects.select_related("activated_by_agency").defer(
        "artifact", "heldout", "manifest_text"
    )


def model_by_version(version: str) -> RoutingModel | None:
    return public_models().filter(version=version).first()


def current_active_row() -> RoutingModel | None:
    return public_models().filter(state=RoutingModel.State.ACTIVE).first()


def office_models() -> QuerySet[RoutingModel]:
    return public_models().exclude(state=RoutingModel.State.RETIRED)


def comparison(candidate: RoutingModel) -> dict[str, Any]:
    """The candidate against the active model on the candidate's held-out rows: the candidate's
    figures as measured before its final refit (recorded in its manifest), the active model's
    measured now on the same rows."""
    validation = candidate.manifest.get("validation", {})
    cand = dict(validation.get("metrics", {}))
    cand.setdefault("threshold", candidate.threshold)
    active_row = current_active_row()
    result: dict[str, Any] = {
        "candidate": cand,
        "active": None,
        "active_row": active_row,
        "rows": cand.get("rows", 0),
    }
    if active_row is None or active_row.pk == candidate.pk:
        return result
    row = RoutingModel.objects.get(pk=candidate.pk)
    files = artifact_files(row, with_heldout=True)
    rows = ml.parse_heldout(files[ml.HELDOUT].decode())
    try:
        active = load_model(RoutingModel.objects.get(pk=active_row.pk))
    except ml.RoutingError as exc:
        result["active_error"] = str(exc)
        return result
    result["active"] = ml.metrics(active, rows)
    result["rows"] = len(rows)
    return result


def training_examples() -> QuerySet[TrainingExample]:
    return TrainingExample.objects.order_by("created_at", "id")
