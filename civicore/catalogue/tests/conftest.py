from __future__ import annotations

import pytest

from civicore.catalogue.services import procedures_import, service_load
from civicore.catalogue.tests.factories import SHIPPED, load_demo_agencies


@pytest.fixture
def catalogue(db):
    """The demo agencies, the national procedure catalogue and every shipped e-service."""
    from civicore.catalogue.definitions import load_file

    load_demo_agencies()
    procedures_import()
    for path in SHIPPED:
        service_load(definition=load_file(path))
