"""Background work of the audit log: sealing new entries into the hash chain."""

from civicore.audit import services
from civicore.core import jobs


@jobs.periodic(seconds=1.0)
def seal_audit_log() -> None:
    services.seal()
