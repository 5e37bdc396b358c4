"""Signals the identity domain sends.

`profile_items_changed` is sent inside the transaction that changes a person's profile, so a
receiver that writes rows (the exchange's outbox) commits or rolls back with the change itself.
Arguments: person (Person), changes (list of {"key", "source", "verified_at"}: what changed,
never the values), cause (str, e.g. "agency.update", "citizen.declare"), actor (User or None),
agency (Agency or None, the agency of record that made the change).

`session_ending` is sent just before one of a user's login sessions is ended from a sessions
page, while the session's data can still be read. Arguments: user (User), session_key (str).
"""

from __future__ import annotations

from django.dispatch import Signal

profile_items_changed = Signal()
session_ending = Signal()
