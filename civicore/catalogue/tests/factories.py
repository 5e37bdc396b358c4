from __future__ import annotations

import copy
from functools import cache
from typing import Any

from civicore.catalogue.definitions import load_file
from civicore.catalogue.models import ServiceVersion
from civicore.catalogue.services import AGENCIES_FILE, SERVICES_DIR, agencies_load, service_load

SHIPPED = sorted(SERVICES_DIR.glob("*.yaml"))


@cache
def _shipped(code: str) -> dict[str, Any]:
    return load_file(SERVICES_DIR / f"{code}.yaml")


def definition(source: str = "birth-registration", **changes: Any) -> dict[str, Any]:
    """A fresh, valid copy of a shipped definition, with top-level keys replaced."""
    data = copy.deepcopy(_shipped(source))
    data.update(changes)
    return data


def load_demo_agencies() -> None:
    agencies_load(path=AGENCIES_FILE)


def make_service(source: str = "birth-registration", **changes: Any) -> ServiceVersion:
    load_demo_agencies()
    return service_load(definition=definition(source, **changes))
