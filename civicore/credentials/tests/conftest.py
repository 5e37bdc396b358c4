from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from civicore.credentials.services import signing_material_reset, signing_setup


@pytest.fixture
def signing_dir(tmp_path: Path, settings: Any) -> Path:
    """Fresh signing keys for each test, in its own directory."""
    directory = tmp_path / "signing"
    signing_setup(directory=directory)
    settings.SIGNING_DIR = directory
    signing_material_reset()
    yield directory
    signing_material_reset()
