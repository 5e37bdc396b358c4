"""Whom a request acts for: the person themselves, or one of their organisations.

Portal pages keep the choice in the session (switched at /business/, shown in the header); API
calls name the organisation in each request with the `X-Acting-For` header. Choosing only
records intent: every act checks the person's grants for the organisation at that moment.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from civicore.identity.models import Person
from civicore.organisations import selectors
from civicore.organisations.models import Organisation

SESSION_KEY = "civicore.acting_for"
HEADER = "X-Acting-For"


def acting_organisation(request: HttpRequest) -> Organisation | None:
    """The organisation the portal session acts for, or None when the person acts for
    themselves. Costs one query, and none for people acting for themselves."""
    chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    if not isinstance(chosen, dict) or not isinstance(chosen.get("id"), int):
        return None
    organisation = selectors.organisation_by_id(chosen["id"])
    if organisation is None:
        request.session.pop(SESSION_KEY, None)
    return organisation


def act_for(request: HttpRequest, *, person: Person, registration_number: str) -> Organisation | None:
    """Switch the session to act for an organisation the person belongs to ("" for themselves)."""
    if not registration_number:
        request.session.pop(SESSION_KEY, None)
        return None
    organisation = selectors.organisation_for_member(person=person, registration_number=registration_number)
    request.session[SESSION_KEY] = {
        "id": organisation.pk,
        "registration_number": organisation.registration_number,
        "name": organisation.name,
    }
    return organisation


def shown_in_header(request: Any) -> dict[str, Any] | None:
    """What the header says the session acts for, from the session alone (no query)."""
    session = getattr(request, "session", None)
    chosen = session.get(SESSION_KEY) if session is not None else None
    return chosen if isinstance(chosen, dict) and chosen.get("name") else None


def organisation_from_header(request: HttpRequest, *, person: Person) -> Organisation | None:
    """The organisation an API call names in X-Acting-For, if the person is a member of it;
    no header, no organisation (and no query). Unknown or foreign: 403 no_business_role."""
    raw = request.headers.get(HEADER)
    if raw is None:
        return None
    return selectors.organisation_for_member(person=person, registration_number=raw)
