"""Background work for consented sharing: telling applications that a citizen's login session
ended (OpenID Connect Back-Channel Logout), retried with back-off until they acknowledge it."""

from __future__ import annotations

from civicore.consent import services
from civicore.core.jobs import job


@job(services.BACKCHANNEL_LOGOUT_JOB)
def backchannel_logout(client_session_id: int) -> None:
    services.backchannel_logout_deliver(client_session_id=client_session_id)
