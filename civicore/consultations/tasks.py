"""Background work of consultations: closing those whose closing date has passed."""

from civicore.consultations import services
from civicore.core import jobs


@jobs.periodic(seconds=300.0)
def close_past_consultations() -> None:
    services.close_past_consultations()
