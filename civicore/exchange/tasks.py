"""Background work of the exchange besides delivering (which the dispatcher thread does): the
citizen's receipt once every delivery of a change is settled."""

from civicore.core import jobs
from civicore.exchange import services


@jobs.periodic(seconds=2.0)
def send_change_receipts() -> None:
    services.receipts_send()
