"""Writes for problem reports: filing, "me too", routing, the agency's work and the citizen's rating.

Filing validates everything before anything is saved (text, place, photos, rate limit), then
asks the routing model: a sure prediction (or the citizen's own category) sends the report to the
agency's inbox, anything else to triage. Every status change is a ReportEvent, is audited, and
notifies the reporter, the supporters and the followers of reports merged into it.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from civicore.agencies import permissions
from civicore.agencies.models import Officer, Team
from civicore.areas import services as areas
from civicore.audit import services as audit
from civicore.core import jobs
from civicore.core.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from civicore.core.workdays import add_working_days
from civicore.insights import events as insights
from civicore.reports import geocoding
from civicore.reports import photos as photo_checks
from civicore.reports.models import Report, ReportCategory, ReportEvent, ReportPhoto, ReportSupporter
from civicore.routing import services as routing
from civicore.routing.services import RoutingDecision

logger = logging.getLogger(__name__)

DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 2000
DESCRIPTION_MIN_LETTERS = 3  # a description of only digits, punctuation or emoji says nothing
MAX_PHOTOS = 5
NOTE_MAX = 2000
COMMENT_MAX = 1000
ADDRESS_MAX = 300
NAME_MAX = 200
PHONE_MAX = 30
EMAIL_JOB = "reports.email_contact"


class ReportInvalid(ValidationFailed):
    """The report is not valid."""

    code = "report_invalid"


class OutsideArea(ValidationFailed):
    """The place is outside the area this service covers."""

    code = "outside_area"


class RateLimited(ApplicationError):
    """Too many reports in a short time."""

    code = "rate_limited"
    status = 429


class TransitionNotAllowed(Conflict):
    """This is not possible in the report's current state."""

    code = "transition_not_allowed"


def _invalid(field: str, message: str, code: str = "report_invalid") -> ReportInvalid:
    return ReportInvalid(message, code=code, details={field: message})


# --- input checks --------------------------------------------------------------------------------


def _printable(text: str) -> str:
    """NFC text without control, format (zero-width, bidi override) or private-use characters;
    line breaks and tabs are kept."""
    text = unicodedata.normalize("NFC", text or "")
    return "".join(
        char for char in text if char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cf", "Co", "Cs")
    )


def clean_description(text: str) -> str:
    text = _printable(text).strip()
    if len(text) < DESCRIPTION_MIN:
        raise _invalid(
            "description",
            _("Describe the problem in at least %(min)d characters.") % {"min": DESCRIPTION_MIN},
            "description_too_short",
        )
    if len(text) > DESCRIPTION_MAX:
        raise _invalid(
            "description",
            _("The description is too long: at most %(max)d characters (it has %(length)d).")
            % {"max": DESCRIPTION_MAX, "length": len(text)},
            "description_too_long",
        )
    if sum(1 for char in text if char.isalpha()) < DESCRIPTION_MIN_LETTERS:
        raise _invalid(
            "description",
            _("Describe the problem in words."),
            "description_without_words",
        )
    return text


def in_service_area(latitude: float, longitude: float) -> bool:
    south, west, north, east = (float(part) for part in settings.REPORT_AREA)
    return south <= latitude <= north and west <= longitude <= east


def clean_location(latitude: Any, longitude: Any) -> tuple[float, float]:
    try:
        lat, lon = float(latitude), float(longitude)
    except (TypeError, ValueError) as exc:
        raise _invalid(
            "location", _("Mark the place on the map or enter its coordinates."), "location_required"
        ) from exc
    if lat != lat or lon != lon or not (-90 <= lat <= 90 and -180 <= lon <= 180):  # NaN or off the globe
        raise _invalid("location", _("These coordinates are not valid."), "location_invalid")
    if not in_service_area(lat, lon):
        raise OutsideArea(
            _("This place is outside the area this service covers."),
            details={"location": _("This place is outside the area this service covers.")},
        )
    return lat, lon


def _clean_contact(name: str, email: str, phone: str) -> tuple[str, str, str]:
    name, email, phone = (name or "").strip(), (email or "").strip(), (phone or "").strip()
    if len(name) > NAME_MAX:
        raise _invalid("contact_name", _("The name is too long."))
    if email:
        try:
            EmailValidator()(email)
        except ValidationError as exc:
            raise _invalid(
                "contact_email", _("Enter a valid e-mail address."), "contact_email_invalid"
            ) from exc
    if phone and (len(phone) > PHONE_MAX or not all(c.isdigit() or c in "+-. ()" for c in phone)):
        raise _invalid("contact_phone", _("Enter a valid phone number."), "contact_phone_invalid")
    return name, email, phone


def _category(code: str | None) -> ReportCategory | None:
    if not code:
        return None
    category = ReportCategory.objects.select_related("agency").filter(code=code, active=True).first()
    if category is None:
        raise _invalid("category", _("Choose one of the listed categories."), "unknown_category")
    return category


def client_key_for(*, user: Any = None, address: str = "") -> str:
    """What the rate limit counts: the account, or a keyed hash of the address (never the address)."""
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    digest = salted_hmac("civicore.reports.client", address or "unknown").hexdigest()[:32]
    return f"ip:{digest}"


def check_rate(client_key: str, limit: int | None = None) -> None:
    """At most `limit` reports an hour from one client (REPORT_RATE_PER_HOUR unless given)."""
    if not client_key:
        return
    limit = int(settings.REPORT_RATE_PER_HOUR if limit is None else limit)
    since = timezone.now() - timedelta(hours=1)
    if Report.objects.filter(client_key=client_key, created_at__gte=since).count() >= limit:
        raise RateLimited(
            _("You have sent %(limit)d reports in the last hour. Please wait before sending another.")
            % {"limit": limit},
            details={"limit": limit, "per": "hour"},
        )


# --- routing -------------------------------------------------------------------------------------


def predict(text: str) -> RoutingDecision | None:
    """The routing model's decision for the text, or None when there is no model (or it fails)."""
    try:
        return routing.route(text)
    except Exception:  # a broken model must never lose a citizen's report: it goes to triage
        logger.exception("routing failed; the report goes to triage")
        return None


def _record_decision(
    decision: RoutingDecision | None, report: Report, outcome: str, actor: Any = None
) -> None:
    if decision is None:
        return
    routing.decision_record(
        decision, subject_type="reports.report", subject_id=str(report.pk), outcome=outcome, actor=actor
    )


def _stored_decision(report: Report) -> RoutingDecision | None:
    """The model's decision at filing, rebuilt from the report, to audit what happened to it later."""
    if report.routing_model_id is None:
        return None
    confidence = report.routing_confidence or 0.0
    threshold = report.routing_threshold if report.routing_threshold is not None else 1.0
    return RoutingDecision(
        model_id=report.routing_model_id,
        model_version=report.routing_model_version,
        label=report.routing_label,
        confidence=confidence,
        threshold=threshold,
        top3=[(str(code), float(conf)) for code, conf in report.routing_suggestions],
        auto=confidence >= threshold,
    )


def _record_correction(*, report: Report, predicted: str, label: str, reason: str, officer: Officer) -> None:
    routing.correction_record(
        text=report.description,
        predicted=predicted,
        label=label,
        reason=reason,
        officer=officer,
        model_id=report.routing_model_id if report.routed_by == Report.RoutedBy.AI else None,
    )


def _record_confirmation(*, report: Report, officer: Officer) -> None:
    """An officer's routing that agrees with the model's first suggestion, or an AI routing that an
    agency resolved without sending it elsewhere: kept as a training example too."""
    if report.category is None or report.routing_model_id is None:
        return
    routing.confirmation_record(
        text=report.description, label=report.category.code, officer=officer, model_id=report.routing_model_id
    )


def _send_to(report: Report, category: ReportCategory, *, routed_by: str, start: Any = None) -> None:
    report.category = category
    report.agency = category.agency
    report.status = Report.Status.OPEN
    report.routed_by = routed_by
    report.due_at = add_working_days(start or timezone.now(), category.sla_days)


# --- notifications -------------------------------------------------------------------------------


def _link(report: Report) -> str:
    return f"/report/{report.reference}/"


def _followers(report: Report, *, new: bool = False) -> tuple[list[Any], list[tuple[int, str]]]:
    """Users and (report id, recipient) e-mail targets to tell about a change of `report`: its
    reporter and supporters, and those of the reports merged into it. A report being filed has
    only its reporter (`new`), so filing asks the database nothing here."""
    if new:
        if report.reporter_id is not None:
            return [report.reporter], []
        return [], [(report.pk, "reporter")] if report.contact_email else []
    reports = [report, *Report.objects.filter(merged_into=report)]
    users: dict[int, Any] = {}
    emails: list[tuple[int, str]] = []
    for each in reports:
        if each.reporter_id is not None:
            users.setdefault(each.reporter_id, each.reporter)
        elif each.contact_email:
            emails.append((each.pk, "reporter"))
        for supporter in each.supporters.select_related("user"):
            if supporter.user_id is not None:
                users.setdefault(supporter.user_id, supporter.user)
            elif supporter.contact_email:
                emails.append((each.pk, f"supporter:{supporter.pk}"))
    return list(users.values()), emails


def _notify(report: Report, subject: str, body: str, *, exclude_user: Any = None, new: bool = False) -> None:
    from civicore.notify.services import notification_send

    users, emails = _followers(report, new=new)
    for user in users:
        if exclude_user is not None and user.pk == exclude_user.pk:
            continue
        notification_send(user=user, subject=subject, body=body, link=_link(report))
    for report_id, recipient in emails:
        jobs.enqueue(EMAIL_JOB, report_id=report_id, recipient=recipient, subject=subject, body=body)


def _status_message(report: Report, kind: str, note: str = "") -> tuple[str, str]:
    with translation.override(report.language or settings.LANGUAGE_CODE):
        ref = report.reference
        if kind == ReportEvent.Kind.ROUTED:
            subject = _("Your report %(ref)s was sent to %(agency)s") % {
                "ref": ref,
                "agency": report.agency.name if report.agency else "",
            }
        elif kind == ReportEvent.Kind.REROUTED:
            subject = _("Your report %(ref)s was sent to another agency: %(agency)s") % {
                "ref": ref,
                "agency": report.agency.name if report.agency else "",
            }
        elif kind == ReportEvent.Kind.IN_PROGRESS:
            subject = _("Work has started on report %(ref)s") % {"ref": ref}
        elif kind == ReportEvent.Kind.RESOLVED:
            subject = _("Report %(ref)s was resolved") % {"ref": ref}
        elif kind == ReportEvent.Kind.REOPENED:
            subject = _("Report %(ref)s was reopened") % {"ref": ref}
        elif kind == ReportEvent.Kind.MERGED:
            subject = _("Report %(ref)s was merged into %(main)s") % {
                "ref": ref,
                "main": report.merged_into.reference if report.merged_into else "",
            }
        elif kind == ReportEvent.Kind.TRIAGE:
            subject = _("Report %(ref)s is waiting for an officer to route it") % {"ref": ref}
        elif kind == ReportEvent.Kind.ASSIGNED:
            subject = _("Report %(ref)s was assigned to a team") % {"ref": ref}
        else:
            subject = _("Report %(ref)s was updated") % {"ref": ref}
        body = note or _("Status: %(status)s") % {"status": report.get_status_display()}
        return subject, body


def _event(
    report: Report, kind: str, *, actor: Any = None, note: str = "", public: bool = True
) -> ReportEvent:
    label = ""
    if actor is not None:
        officer = getattr(actor, "officer", None) if getattr(actor, "is_authenticated", False) else None
        label = officer.agency.name if isinstance(officer, Officer) else ""
    return ReportEvent.objects.create(report=report, kind=kind, actor_label=label, note=note, public=public)


def _change(
    report: Report, kind: str, *, actor: Any, note: str = "", notify: bool = True, **details: Any
) -> None:
    """Record a status change: event, audit entry, and the followers' notifications."""
    _event(report, kind, actor=actor, note=note)
    audit.record(
        actor=actor,
        action=f"report.{kind}",
        subject=report,
        agency=report.agency,
        details={"status": report.status, "reference": report.reference, **details},
    )
    if notify:
        subject, body = _status_message(report, kind, note)
        _notify(report, subject, body)


# --- filing --------------------------------------------------------------------------------------


def _photos(photos: Sequence[Any]) -> list[photo_checks.CleanPhoto]:
    photos = [photo for photo in photos if photo is not None]
    if len(photos) > MAX_PHOTOS:
        raise _invalid("photos", _("Attach at most %(max)d photos.") % {"max": MAX_PHOTOS}, "too_many_photos")
    cleaned = []
    for index, photo in enumerate(photos, start=1):
        try:
            cleaned.append(photo_checks.clean_photo(photo))
        except photo_checks.PhotoRejected as exc:
            name = getattr(photo, "name", "") or str(index)
            message = _("Photo %(name)s: %(problem)s") % {"name": name, "problem": exc.message}
            raise ReportInvalid(message, code=exc.code, details={"photos": message}) from exc
    return cleaned


def _save_photo(report: Report, clean: photo_checks.CleanPhoto, *, kind: str) -> ReportPhoto:
    photo = ReportPhoto(
        report=report, kind=kind, width=clean.width, height=clean.height, size=len(clean.data)
    )
    photo.file.save("photo.jpg", ContentFile(clean.data), save=False)
    photo.save()
    return photo


def _new_reference_row(report: Report) -> None:
    """Insert the report; a reference that happens to be taken already is drawn again."""
    from civicore.reports.references import generate

    for _attempt in range(5):
        try:
            with transaction.atomic():
                report.save(force_insert=True)
            return
        except IntegrityError:
            if Report.objects.filter(reference=report.reference).exists():
                report.reference = generate()
                continue
            raise
    raise Conflict(_("Could not give the report a reference number; try again."))


def place_address(address: str, *, language: str = "vi") -> tuple[float, float]:
    """Where the configured geocoder puts an address inside the service area. Call it outside
    any transaction: a lookup may wait seconds on the network."""
    address = _printable(address).strip()
    if len(address) > ADDRESS_MAX:
        raise _invalid("address", _("The address is too long."))
    language = "en" if str(language or "").startswith("en") else "vi"
    place = geocoding.locate(address, language=language) if address else None
    if place is None:
        raise _invalid(
            "location",
            _("We could not place this address on the map. Mark the place on the map as well."),
            "location_required",
        )
    return clean_location(place.latitude, place.longitude)


def report_file(
    *,
    reporter: Any,
    description: str,
    latitude: Any,
    longitude: Any,
    address: str = "",
    category_code: str | None = None,
    photos: Sequence[IO[bytes] | bytes] = (),
    contact_name: str = "",
    contact_email: str = "",
    contact_phone: str = "",
    language: str = "vi",
    source: str = "web",
    client_key: str = "",
    rate_per_hour: int | None = None,
    placed_from_address: bool = False,
) -> Report:
    """File a report, route it, and tell the reporter. Nothing is saved unless all of it is valid.

    placed_from_address: the caller put latitude/longitude from place_address(address)."""
    if reporter is not None and not getattr(reporter, "is_authenticated", False):
        reporter = None
    description = clean_description(description)
    address = (address or "").strip()
    if len(address) > ADDRESS_MAX:
        raise _invalid("address", _("The address is too long."))
    category = _category(category_code)
    contact_name, contact_email, contact_phone = _clean_contact(contact_name, contact_email, contact_phone)
    cleaned = _photos(photos)
    if (latitude in (None, "") or longitude in (None, "")) and cleaned:
        # No pin: the first photo that knows where it was taken places the report.
        for clean in cleaned:
            if clean.latitude is not None and clean.longitude is not None:
                latitude, longitude = clean.latitude, clean.longitude
                break
    if latitude in (None, "") or longitude in (None, ""):
        if address:
            # A client over its hourly limit spends no lookups; the check inside the transaction
            # below stays the one that counts.
            check_rate((client_key or client_key_for(user=reporter))[:80], rate_per_hour)
            # Outside the transaction below: the lookup may wait seconds on the network.
            latitude, longitude = place_address(address, language=language)
            placed_from_address = True
    if latitude in (None, "") or longitude in (None, ""):
        raise _invalid(
            "location", _("Mark the place on the map or enter its coordinates."), "location_required"
        )
    lat, lon = clean_location(latitude, longitude)
    if source not in Report.Source.values:
        raise _invalid("source", _("Unknown source."))
    language = "en" if str(language or "").startswith("en") else "vi"
    client_key = (client_key or client_key_for(user=reporter))[:80]
    decision = predict(description)
    with transaction.atomic():
        check_rate(client_key, rate_per_hour)
        report = Report(
            reporter=reporter,
            description=description,
            language=language,
            latitude=lat,
            longitude=lon,
            address=address,
            district=areas.district_at(lat, lon),
            contact_name=contact_name,
            contact_email=contact_email,
            contact_phone=contact_phone,
            source=source,
            client_key=client_key,
        )
        if decision is not None:
            report.routing_model_id = decision.model_id
            report.routing_model_version = decision.model_version[:80]
            report.routing_confidence = float(decision.confidence)
            report.routing_threshold = float(decision.threshold)
            report.routing_label = decision.label[:60]
            report.routing_suggestions = [[str(code), float(conf)] for code, conf in decision.top3]
        predicted = None
        if decision is not None and decision.auto:
            predicted = (
                ReportCategory.objects.select_related("agency")
                .filter(code=decision.label, active=True)
                .first()
            )
        if category is not None:
            _send_to(report, category, routed_by=Report.RoutedBy.CITIZEN)
            outcome = "citizen_category"
        elif predicted is not None:
            _send_to(report, predicted, routed_by=Report.RoutedBy.AI)
            outcome = "auto"
        else:
            outcome = "triage"
        _new_reference_row(report)
        for clean in cleaned:
            _save_photo(report, clean, kind=ReportPhoto.Kind.REPORT)
        _event(
            report,
            ReportEvent.Kind.FILED,
            note=_("Placed on the map from the address.") if placed_from_address else "",
        )
        _event(
            report,
            ReportEvent.Kind.ROUTED if report.status == Report.Status.OPEN else ReportEvent.Kind.TRIAGE,
        )
        audit.record(
            actor=reporter,
            action="report.file",
            subject=report,
            agency=report.agency,
            details={
                "reference": report.reference,
                "status": report.status,
                "category": report.category.code if report.category else "",
                "source": source,
                "photos": len(cleaned),
                "placed_from_address": placed_from_address,
            },
        )
        _record_decision(decision, report, outcome, actor=reporter)
        with translation.override(language):
            subject = _("We received your report %(ref)s") % {"ref": report.reference}
            if report.status == Report.Status.OPEN and report.agency is not None:
                body = _("It was sent to %(agency)s.") % {"agency": report.agency.name}
            else:
                body = _("An officer will send it to the responsible agency.")
        _notify(report, subject, body, new=True)
        # New reports wait in the agency's inbox: handlers are not told of each one (at a city's
        # volume that would bury the messages that need them: re-routed and reopened reports).
    return report


SENSOR_REPORT_SLA_DAYS = 3


def report_open_for_device(
    *, agency: Any, latitude: float, longitude: float, description: str, language: str = "vi"
) -> Report:
    """A problem a city sensor found (a silent sensor, a valve that does not answer), filed
    straight into `agency`'s inbox: no reporter, no routing model, no rate limit. The device is
    the agency's own, so its place is taken as given (checked only to lie on the globe)."""
    description = clean_description(description)
    try:
        lat, lon = float(latitude), float(longitude)
    except (TypeError, ValueError) as exc:
        raise _invalid("location", _("These coordinates are not valid."), "location_invalid") from exc
    if lat != lat or lon != lon or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise _invalid("location", _("These coordinates are not valid."), "location_invalid")
    language = "en" if str(language or "").startswith("en") else "vi"
    with transaction.atomic():
        report = Report(
            reporter=None,
            description=description,
            language=language,
            latitude=lat,
            longitude=lon,
            district=areas.district_at(lat, lon),
            source=Report.Source.SENSOR,
            agency=agency,
            status=Report.Status.OPEN,
            due_at=add_working_days(timezone.now(), SENSOR_REPORT_SLA_DAYS),
        )
        _new_reference_row(report)
        _event(report, ReportEvent.Kind.FILED)
        _event(report, ReportEvent.Kind.ROUTED)
        audit.record(
            actor=None,
            action="report.file",
            subject=report,
            agency=agency,
            details={"reference": report.reference, "status": report.status, "source": Report.Source.SENSOR},
        )
    return report


def _notify_agency(report: Report, subject: str, body: str = "") -> None:
    """Tell the officers who handle the report's agency's inbox."""
    from civicore.notify.services import notification_send

    if report.agency_id is None:
        return
    officers = Officer.objects.filter(agency_id=report.agency_id, active=True).select_related("user")
    for officer in officers:
        if permissions.has_perm(officer, permissions.REPORT_HANDLE):
            notification_send(
                user=officer.user, subject=subject, body=body or subject, link=f"/office/reports/{report.pk}/"
            )


# --- citizens ------------------------------------------------------------------------------------


def _locked(report: Report) -> Report:
    return (
        Report.objects.select_for_update(of=("self",))
        .select_related("category", "agency", "reporter", "merged_into")
        .get(pk=report.pk)
    )


@transaction.atomic
def report_support(
    *, report: Report, user: Any = None, client_key: str = "", contact_email: str = ""
) -> ReportSupporter:
    """ "Me too": follow an open report instead of filing the same problem again."""
    report = _locked(report)
    if report.status == Report.Status.MERGED and report.merged_into is not None:
        report = _locked(report.merged_into)
    if not report.is_open:
        raise TransitionNotAllowed(_("This report is closed; file a new report if the problem is back."))
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    if user is not None and report.reporter_id == user.pk:
        raise Conflict(_("You reported this problem yourself."), code="own_report")
    _name, contact_email, _phone = _clean_contact("", contact_email, "")
    client_key = (client_key or client_key_for(user=user))[:80]
    existing = ReportSupporter.objects.filter(report=report)
    existing = (
        existing.filter(user=user)
        if user is not None
        else existing.filter(user__isnull=True, client_key=client_key)
    )
    found = existing.first()
    if found is not None:
        return found
    supporter = ReportSupporter.objects.create(
        report=report,
        user=user,
        client_key="" if user is not None else client_key,
        contact_email=contact_email,
    )
    _event(report, ReportEvent.Kind.SUPPORTED)
    audit.record(actor=user, action="report.support", subject=report, agency=report.agency)
    return supporter


def is_reporter(report: Report, user: Any, session_refs: Iterable[str] = ()) -> bool:
    if user is not None and getattr(user, "is_authenticated", False) and report.reporter_id == user.pk:
        return True
    return report.reporter_id is None and report.reference in set(session_refs)


@transaction.atomic
def report_request_human_review(*, report: Report, user: Any, session_refs: Iterable[str] = ()) -> Report:
    """The reporter asks that a person, not the model, decides where the report goes."""
    report = _locked(report)
    if not is_reporter(report, user, session_refs):
        raise PermissionDenied(_("Only the person who reported it can ask for a human review."))
    if report.routed_by != Report.RoutedBy.AI or report.status not in (
        Report.Status.OPEN,
        Report.Status.IN_PROGRESS,
    ):
        raise TransitionNotAllowed(
            _("A human review is possible only while a report routed by the AI model is open.")
        )
    previous = report.category.code if report.category else ""
    report.status = Report.Status.TRIAGE
    report.agency = None
    report.due_at = None
    report.routed_by = Report.RoutedBy.NONE
    report.human_review_requested_at = timezone.now()
    report.save()
    actor = user if getattr(user, "is_authenticated", False) else None
    _event(report, ReportEvent.Kind.HUMAN_REVIEW, actor=actor)
    audit.record(
        actor=actor,
        action="report.human_review",
        subject=report,
        details={"reference": report.reference, "previous_category": previous},
    )
    _record_decision(_stored_decision(report), report, "human_review", actor=actor)
    subject, body = _status_message(report, ReportEvent.Kind.TRIAGE)
    _notify(report, subject, body, exclude_user=actor)
    return report


def _rated_through_feedback(report: Report) -> bool:
    """Whether the reporter already rated the report on the feedback page (counted there)."""
    from civicore.feedback.models import Rating

    return Rating.objects.filter(kind=Rating.Kind.REPORT, subject=report.public_id).exists()


@transaction.atomic
def report_rate(
    *,
    report: Report,
    user: Any,
    resolved: bool,
    stars: Any,
    comment: str = "",
    session_refs: Iterable[str] = (),
) -> Report:
    """The reporter's verdict on a resolved report; "not resolved" reopens it for the agency."""
    report = _locked(report)
    if not is_reporter(report, user, session_refs):
        raise PermissionDenied(_("Only the person who reported it can rate the work."))
    if report.status != Report.Status.RESOLVED:
        raise TransitionNotAllowed(_("Only a resolved report can be rated."))
    try:
        stars = int(stars)
    except (TypeError, ValueError):
        stars = 0
    if not 1 <= stars <= 5:
        raise _invalid("stars", _("Choose from 1 to 5 stars."), "stars_invalid")
    comment = (comment or "").strip()
    if len(comment) > COMMENT_MAX:
        raise _invalid(
            "comment", _("The comment is too long: at most %(max)d characters.") % {"max": COMMENT_MAX}
        )
    actor = user if getattr(user, "is_authenticated", False) else None
    if report.rated_at is None and report.agency_id is not None and not _rated_through_feedback(report):
        # The reporter's verdict is also how satisfied they are with the work: the first one
        # counts in the agency's scorecard, as a rating of any other transaction does.
        insights.rating_given(agency_id=report.agency_id, service_id=None, score=stars, at=timezone.now())
    report.rating_resolved = bool(resolved)
    report.rating_stars = stars
    report.rating_comment = comment
    report.rated_at = timezone.now()
    _event(
        report,
        ReportEvent.Kind.RATED,
        actor=actor,
        note=_("%(stars)d of 5 stars") % {"stars": stars},
        public=False,
    )
    if resolved:
        report.save()
        audit.record(
            actor=actor, action="report.rate", subject=report, agency=report.agency, details={"stars": stars}
        )
        return report
    report.status = Report.Status.OPEN
    report.resolved_at = None
    if report.category is not None:
        report.due_at = add_working_days(timezone.now(), report.category.sla_days)
    report.save()
    note = _("The reporter says the problem is not resolved.")
    _change(report, ReportEvent.Kind.REOPENED, actor=actor, note=note, stars=stars)
    _notify_agency(report, _("Report %(ref)s was reopened by its reporter") % {"ref": report.reference}, note)
    return report


# --- officers ------------------------------------------------------------------------------------


def may_handle(officer: Officer | None, report: Report) -> bool:
    return (
        officer is not None
        and permissions.has_perm(officer, permissions.REPORT_HANDLE)
        and report.agency_id is not None
        and report.agency_id == officer.agency_id
    )


def may_triage(officer: Officer | None) -> bool:
    return permissions.has_perm(officer, permissions.REPORT_TRIAGE)


def _require_handler(officer: Officer, report: Report) -> None:
    permissions.require(officer, permissions.REPORT_HANDLE)
    if not may_handle(officer, report):
        raise PermissionDenied(_("This report belongs to another agency."), code="other_agency")


def _note(text: str, *, required: bool, field: str = "note") -> str:
    text = (text or "").strip()
    if required and not text:
        raise _invalid(field, _("This field is required."), f"{field}_required")
    if len(text) > NOTE_MAX:
        raise _invalid(field, _("The text is too long: at most %(max)d characters.") % {"max": NOTE_MAX})
    return text


@transaction.atomic
def report_route(*, report: Report, officer: Officer, category_code: str, reason: str = "") -> Report:
    """Send a report to a category's agency: from triage (report.triage), or away from the
    officer's own agency when it is not theirs (reason required; kept as a correction)."""
    report = _locked(report)
    category = _category(category_code)
    if category is None:
        raise _invalid("category", _("Choose a category."), "category_required")
    if report.status == Report.Status.TRIAGE:
        permissions.require(officer, permissions.REPORT_TRIAGE)
        reason = _note(reason, required=False, field="reason")
        predicted = report.routing_label
        kind = ReportEvent.Kind.ROUTED
    elif report.status in (Report.Status.OPEN, Report.Status.IN_PROGRESS):
        if not may_triage(officer):
            _require_handler(officer, report)
        reason = _note(reason, required=True, field="reason")
        if report.category_id == category.pk:
            raise _invalid("category", _("The report is already in this category."), "same_category")
        predicted = report.category.code if report.category else ""
        kind = ReportEvent.Kind.REROUTED
    else:
        raise TransitionNotAllowed(_("A resolved or merged report cannot be routed."))
    previous_agency = report.agency_id
    _send_to(report, category, routed_by=Report.RoutedBy.OFFICER)
    report.assigned_team = None
    report.assigned_to_label = ""
    report.save()
    if predicted and predicted != category.code:
        _record_correction(
            report=report, predicted=predicted, label=category.code, reason=reason, officer=officer
        )
    elif predicted and kind == ReportEvent.Kind.ROUTED:
        _record_confirmation(report=report, officer=officer)
    _change(
        report,
        kind,
        actor=officer.user,
        category=category.code,
        previous=predicted,
        previous_agency=previous_agency,
        reason=reason,
    )
    _notify_agency(report, _("Report %(ref)s was sent to your agency") % {"ref": report.reference}, reason)
    return report


@transaction.atomic
def report_assign(*, report: Report, officer: Officer, team_id: Any = None, contractor: str = "") -> Report:
    """Give the work to a team of the agency or to a named contractor."""
    report = _locked(report)
    _require_handler(officer, report)
    if not report.is_open or report.status == Report.Status.TRIAGE:
        raise TransitionNotAllowed(_("Only an open report can be assigned."))
    contractor = (contractor or "").strip()
    team = None
    if team_id not in (None, ""):
        try:
            team = Team.objects.filter(pk=int(team_id), agency_id=officer.agency_id).first()
        except (TypeError, ValueError):
            team = None
        if team is None:
            raise _invalid("team", _("Choose a team of your agency."), "unknown_team")
    if team is None and not contractor:
        raise _invalid("team", _("Choose a team or name a contractor."), "assignee_required")
    if len(contractor) > 200:
        raise _invalid("contractor", _("The name is too long."))
    report.assigned_team = team
    report.assigned_to_label = contractor
    if report.status == Report.Status.OPEN:
        report.status = Report.Status.IN_PROGRESS
    report.save()
    label = team.name if team else contractor
    _change(report, ReportEvent.Kind.ASSIGNED, actor=officer.user, note="", assignee=label)
    return report


@transaction.atomic
def report_start(*, report: Report, officer: Officer) -> Report:
    report = _locked(report)
    _require_handler(officer, report)
    if report.status != Report.Status.OPEN:
        raise TransitionNotAllowed(_("Work can start only on an open report."))
    report.status = Report.Status.IN_PROGRESS
    report.save()
    _change(report, ReportEvent.Kind.IN_PROGRESS, actor=officer.user)
    return report


@transaction.atomic
def report_resolve(
    *, report: Report, officer: Officer, note: str, photo: IO[bytes] | bytes | None = None
) -> Report:
    """Close the report as fixed, with a note the citizen sees and optionally a photo of the fix."""
    report = _locked(report)
    _require_handler(officer, report)
    if report.status not in (Report.Status.OPEN, Report.Status.IN_PROGRESS):
        raise TransitionNotAllowed(_("Only an open report can be resolved."))
    note = _note(note, required=True)
    clean = None
    if photo is not None:
        try:
            clean = photo_checks.clean_photo(photo)
        except photo_checks.PhotoRejected as exc:
            raise ReportInvalid(exc.message, code=exc.code, details={"photo": exc.message}) from exc
    report.status = Report.Status.RESOLVED
    report.resolved_at = timezone.now()
    report.resolution_note = note
    report.save()
    if clean is not None:
        _save_photo(report, clean, kind=ReportPhoto.Kind.FIX)
    if report.routed_by == Report.RoutedBy.AI and report.routing_label == getattr(
        report.category, "code", ""
    ):
        # The agency fixed what the model sent it without sending it elsewhere: the routing was right.
        _record_confirmation(report=report, officer=officer)
    _change(report, ReportEvent.Kind.RESOLVED, actor=officer.user, note=note)
    return report


@transaction.atomic
def report_merge(*, report: Report, into_reference: str, officer: Officer) -> Report:
    """Merge a duplicate into the main report: its followers then hear of the main one's changes."""
    from civicore.reports.references import normalise

    report = _locked(report)
    if not may_triage(officer):
        _require_handler(officer, report)
    if not report.is_open:
        raise TransitionNotAllowed(_("Only an open report can be merged."))
    main = Report.objects.select_related("merged_into").filter(reference=normalise(into_reference)).first()
    if main is not None and main.status == Report.Status.MERGED and main.merged_into is not None:
        main = main.merged_into
    if main is None:
        raise _invalid("into", _("No report has this reference."), "unknown_report")
    if main.pk == report.pk:
        raise _invalid("into", _("A report cannot be merged into itself."), "merge_self")
    if main.status == Report.Status.MERGED:
        raise _invalid("into", _("That report was merged into another one."), "merge_target_merged")
    main = _locked(main)
    report.status = Report.Status.MERGED
    report.merged_into = main
    report.save()
    Report.objects.filter(merged_into=report).update(merged_into=main)
    _change(report, ReportEvent.Kind.MERGED, actor=officer.user, into=main.reference)
    _event(
        main,
        ReportEvent.Kind.SUPPORTED,
        actor=officer.user,
        note=_("A duplicate report was merged into this one."),
    )
    return report


@transaction.atomic
def photo_publish(*, report: Report, photo_id: Any, officer: Officer, published: bool) -> ReportPhoto:
    """Show a photo on the public map, or take it off."""
    _require_handler(officer, report)
    photo = ReportPhoto.objects.select_for_update().filter(public_id=photo_id, report=report).first()
    if photo is None:
        raise NotFound(_("Photo not found."))
    photo.published = bool(published)
    photo.save(update_fields=["published"])
    audit.record(
        actor=officer.user,
        action="report.photo_publish" if published else "report.photo_unpublish",
        subject=photo,
        agency=officer.agency,
        details={"report": report.pk},
    )
    return photo


# --- categories ----------------------------------------------------------------------------------


@transaction.atomic
def category_upsert(
    *,
    code: str,
    name_vi: str,
    name_en: str,
    agency_code: str,
    sla_days: int = 5,
    description_vi: str = "",
    description_en: str = "",
    keywords: str = "",
    active: bool = True,
) -> tuple[ReportCategory, bool]:
    """Create or update a category by its code (idempotent: loading the same file twice changes nothing)."""
    from civicore.agencies.models import Agency

    agency = Agency.objects.filter(code=agency_code).first()
    if agency is None:
        raise ValidationFailed(
            _("Unknown agency %(code)s.") % {"code": agency_code},
            code="unknown_agency",
            details={"agency": agency_code},
        )
    values = {
        "name_vi": name_vi,
        "name_en": name_en,
        "agency": agency,
        "sla_days": int(sla_days),
        "description_vi": description_vi,
        "description_en": description_en,
        "keywords": keywords,
        "active": bool(active),
    }
    category = ReportCategory.objects.filter(code=code).first()
    created = category is None
    if category is None:
        category = ReportCategory(code=code)
    for key, value in values.items():
        setattr(category, key, value)
    try:
        category.full_clean()
    except ValidationError as exc:
        raise ValidationFailed(
            _("Category %(code)s is not valid.") % {"code": code},
            code="invalid_category",
            details=exc.message_dict,
        ) from exc
    category.save()
    return category, created


def report_email_contact(*, report_id: int, recipient: str, subject: str, body: str) -> None:
    """Send an update to someone who follows a report without an account (by their e-mail)."""
    from django.core.mail import send_mail

    report = Report.objects.filter(pk=report_id).first()
    if report is None:
        return
    if recipient == "reporter":
        address = report.contact_email
    else:
        supporter = ReportSupporter.objects.filter(
            pk=int(recipient.removeprefix("supporter:")), report=report
        ).first()
        address = supporter.contact_email if supporter else ""
    if not address:
        return
    link = f"{getattr(settings, 'SITE_URL', '').rstrip('/')}{_link(report.merged_into or report)}"
    send_mail(subject, f"{body}\n\n{link}", None, [address])


def districts_reassign(*, batch: int = 5000) -> int:
    """Give every report the district its place lies in under the districts loaded now (after a
    load of new boundaries); returns how many reports changed district. Reads in batches of
    `batch` by id and writes each batch in its own transaction, one UPDATE per district."""
    index = areas.index()
    changed, last = 0, 0
    while True:
        rows = list(
            Report.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "latitude", "longitude", "district")[:batch]
        )
        if not rows:
            return changed
        last = rows[-1][0]
        codes = index.codes_at([row[1] for row in rows], [row[2] for row in rows])
        moves: dict[str, list[int]] = {}
        for (pk, _lat, _lon, current), code in zip(rows, codes, strict=True):
            if code != current:
                moves.setdefault(code, []).append(pk)
        with transaction.atomic():
            for code, pks in moves.items():
                changed += Report.objects.filter(pk__in=pks).update(district=code)
