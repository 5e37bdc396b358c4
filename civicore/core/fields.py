"""Model fields for personal data."""

from __future__ import annotations

import json
from typing import Any

from civicore.core.crypto import EncryptedTextField


class EncryptedJSONField(EncryptedTextField):
    """A JSON document stored encrypted (form answers hold personal data)."""

    # Tell django-stubs the Python-side type is a JSON value, not the text it is stored as.
    _pyi_private_set_type: Any
    _pyi_private_get_type: Any

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        text = super().from_db_value(value, expression, connection)
        if text is None or text == "":
            return {}
        return json.loads(text)

    def get_prep_value(self, value: Any) -> Any:
        return super().get_prep_value(json.dumps(value if value is not None else {}, ensure_ascii=False))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value else {}
        return value

    def value_to_string(self, obj: Any) -> str:
        return json.dumps(self.value_from_object(obj), ensure_ascii=False)
