"""Writes of AI routing: a decision for a text, its audit entry, the corrections kept as training
data, and registering and activating models. A model becomes active only through
`model_activate`, which checks its files' hashes and its labels, retires the previous model and is
audited; at most one model is active.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.audit import services as audit
from civicore.core.errors import Conflict, ValidationFailed
from civicore.routing import ml, selectors
from civicore.routing.models import RoutingModel, TrainingExample

# What happened to a decision: routed, sent to triage, sent back to a person on the citizen's
# request, or overridden by the category the citizen chose.
OUTCOMES = ("auto", "triage", "human_review", "citizen_category")


@dataclass(frozen=True)
class RoutingDecision:
    model_id: int
    model_version: str
    label: str
    confidence: float
    threshold: float
    top3: list[tuple[str, float]]
    auto: bool


def route(text: str) -> RoutingDecision | None:
    """The active model's decision for `text`; None when no model is active (or it was refused)."""
    loaded = selectors.active_model()
    if loaded is None or not (text or "").strip():
        return None
    prediction = loaded.model.predict_one(text)
    return RoutingDecision(
        model_id=loaded.id,
        model_version=loaded.version,
        label=prediction.label,
        confidence=round(prediction.confidence, 6),
        threshold=loaded.model.threshold,
        top3=[(label, round(conf, 6)) for label, conf in prediction.top3],
        auto=prediction.auto,
    )


def decision_record(
    decision: RoutingDecision, *, subject_type: str, subject_id: str, outcome: str, actor: Any = None
) -> None:
    """The audit entry of one AI decision: which model, how sure, the threshold, and what happened."""
    if outcome not in OUTCOMES:
        raise ValidationFailed(_("Unknown routing outcome."), details={"outcome": outcome})
    audit.record(
        actor=actor,
        action="ai.route",
        subject_type=subject_type,
        subject_id=subject_id,
        details={
            "model_id": decision.model_id,
            "model_version": decision.model_version,
            "label": decision.label,
            "confidence": decision.confidence,
            "threshold": decision.threshold,
            "top3": [[label, conf] for label, conf in decision.top3],
            "auto": decision.auto,
            "outcome": outcome,
        },
    )


def _example(
    *, text: str, label: str, predicted: str, reason: str, officer: Any, model_id: int | None, source: str
) -> TrainingExample:
    if not (text or "").strip() or not (label or "").strip():
        raise ValidationFailed(_("A training example needs the report's text and its category."))
    model = RoutingModel.objects.filter(pk=model_id).first() if model_id else None
    example = TrainingExample(
        text=text,
        label=label.strip(),
        predicted_label=(predicted or "").strip(),
        reason=reason or "",
        source=source,
        officer=officer,
        model=model,
    )
    example.full_clean()
    example.save()
    return example


@transaction.atomic
def correction_record(
    *, text: str, predicted: str, label: str, reason: str, officer: Any, model_id: int | None
) -> None:
    """An officer's re-routing, kept as a training example (the report's text is stored encrypted)."""
    _example(
        text=text,
        label=label,
        predicted=predicted,
        reason=reason,
        officer=officer,
        model_id=model_id,
        source=TrainingExample.Source.CORRECTION,
    )


@transaction.atomic
def confirmation_record(*, text: str, label: str, officer: Any, model_id: int | None) -> None:
    """A routing an officer confirmed (routed from triage, or accepted), kept as a training example."""
    _example(
        text=text,
        label=label,
        predicted=label,
        reason="",
        officer=officer,
        model_id=model_id,
        source=TrainingExample.Source.CONFIRMED,
    )


def training_rows_csv() -> str:
    """The kept examples as training rows: text,label,time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label", "time"])
    for example in selectors.training_examples().iterator():
        writer.writerow([example.text, example.label, example.created_at.isoformat()])
    return buffer.getvalue()


# --- the registry ----------------------------------------------------------------------------


@transaction.atomic
def model_register(*, files: dict[str, bytes], actor: Any = None) -> RoutingModel:
    """Keep a trained model (its files already read) as a candidate. Registering the same files
    again returns the existing row; another model under the same version is refused."""
    manifest = ml.verify(files)
    ml.load_files(files)  # the weights open and match the labels
    digest = ml.sha256_bytes(files[ml.MANIFEST])
    version = str(manifest.get("model_version") or "")
    if not version:
        raise ValidationFailed(_("The model has no version."), code="model_invalid")
    existing = RoutingModel.objects.filter(version=version).first()
    if existing is not None:
        if existing.sha256 != digest:
            raise Conflict(
                _("Another model is registered under version %(version)s.") % {"version": version},
                code="model_version_taken",
            )
        return existing
    heldout = files.get(ml.HELDOUT, b"")
    try:
        heldout_text = heldout.decode()
    except UnicodeDecodeError as exc:
        raise ValidationFailed(_("The held-out rows are not UTF-8 text."), code="model_invalid") from exc
    row = RoutingModel.objects.create(
        version=version,
        sha256=digest,
        manifest=manifest,
        manifest_text=files[ml.MANIFEST].decode(),
        artifact=files[ml.WEIGHTS],
        heldout=heldout_text,
    )
    audit.record(
        actor=actor, action="ai.model_registered", subject=row, details={"version": version, "sha256": digest}
    )
    return row


def _unknown_labels(labels: list[str]) -> list[str]:
    from civicore.reports.selectors import unknown_category_codes

    return unknown_category_codes(labels)


@transaction.atomic
def model_activate(model: RoutingModel, officer_user: Any = None, *, operator: bool = False) -> RoutingModel:
    """Make `model` the active one, retiring the previous. `officer_user` must hold ai.manage (the
    page always passes the signed-in user); only the command line, run by the platform's operator,
    may activate without one (`operator=True`)."""
    officer = None
    if officer_user is not None:
        officer = permissions.officer_with_perm(
            officer_user, permissions.AI_MANAGE, message=_("Only AI model stewards may activate a model.")
        )
    elif not operator:
        raise permissions.MissingPermission(_("Only AI model stewards may activate a model."))
    row = RoutingModel.objects.select_for_update().get(pk=model.pk)
    if row.state == RoutingModel.State.ACTIVE:
        raise Conflict(_("This model is already active."), code="model_already_active")
    try:
        selectors.artifact_files(row, with_heldout=True)
    except ml.RoutingError as exc:
        raise ValidationFailed(
            _("The model's files do not match their hashes; it cannot be activated."), code="model_integrity"
        ) from exc
    unknown = _unknown_labels(row.labels)
    if unknown:
        raise ValidationFailed(
            _("The model predicts categories that are not active report categories: %(codes)s.")
            % {"codes": ", ".join(unknown)},
            code="unknown_labels",
            details={"labels": unknown},
        )
    previous = RoutingModel.objects.select_for_update().filter(state=RoutingModel.State.ACTIVE).first()
    if previous is not None:
        previous.state = RoutingModel.State.RETIRED
        previous.save(update_fields=["state"])
    row.state = RoutingModel.State.ACTIVE
    row.activated_at = timezone.now()
    row.activated_by = officer_user if officer_user is not None else None
    row.activated_by_label = str(officer_user) if officer_user is not None else "operator"
    row.activated_by_agency = officer.agency if officer is not None else None
    try:
        with transaction.atomic():
            row.save(
                update_fields=[
                    "state",
                    "activated_at",
                    "activated_by",
                    "activated_by_label",
                    "activated_by_agency",
                ]
            )
    except IntegrityError as exc:  # another activation won the race
        raise Conflict(
            _("Another model was activated at the same time; try again."), code="model_activation_race"
        ) from exc
    validation = row.manifest.get("validation", {})
    audit.record(
        actor=officer_user,
        action="ai.model_activated",
        subject=row,
        agency=officer.agency if officer is not None else None,
        details={
            "version": row.version,
            "sha256": row.sha256,
            "previous": previous.version if previous is not None else None,
            "threshold": row.threshold,
            "precision_target": row.manifest.get("precision_target"),
            "validation_precision": validation.get("precision"),
            "validation_coverage": validation.get("coverage"),
        },
    )
    transaction.on_commit(selectors.forget_cache)
    return row
