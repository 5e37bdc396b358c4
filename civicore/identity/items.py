"""The profile item registry: every fact Civicore may hold about a person, its value type and who
may change it. Filled once at import; adding an item is one `register()` call here, a member of
ProfileItem.Key and a migration for the choices.

A value type turns raw input (a JSON value from an agency, a form field from a citizen) into the
canonical text that is stored encrypted, or raises ItemValueError with messages in the active
language, keyed by the sub-field they belong to ("" for the whole value).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator

MAX_TEXT = 500
EARLIEST_DATE = dt.date(1900, 1, 1)
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# Tab and newline are kept in addresses; every other control character is refused.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Bilingual:
    vi: str
    en: str

    def __str__(self) -> str:
        return self.en if (get_language() or "vi").startswith("en") else self.vi

    def as_dict(self) -> dict[str, str]:
        return {"vi": self.vi, "en": self.en}


class ItemValueError(Exception):
    """A value that does not fit its item's type. `errors` maps a sub-field ("" for the whole
    value, "year", "0.plate") to a message in the active language."""

    def __init__(self, errors: dict[str, str], summary: list[str] | None = None):
        super().__init__("; ".join(summary or errors.values()))
        self.errors = errors
        self.summary = summary or list(errors.values())

    def message(self) -> str:
        return " ".join(self.summary)


def _one(message: str) -> ItemValueError:
    return ItemValueError({"": message})


def _check_text(raw: Any, *, max_length: int) -> str:
    if not isinstance(raw, str):
        raise _one(_("Enter the value as text."))
    value = raw.replace("\r\n", "\n").strip()
    if not value:
        raise _one(_("Enter a value."))
    if _CONTROL.search(value):
        raise _one(_("Remove the invisible control characters."))
    if len(value) > max_length:
        raise _one(_("Use at most %(n)d characters.") % {"n": max_length})
    return value


def _check_date(raw: Any) -> dt.date:
    if isinstance(raw, dt.datetime) or not isinstance(raw, dt.date | str):
        raise _one(_("Enter a date as YYYY-MM-DD."))
    if isinstance(raw, str):
        text = raw.strip()
        if not re.match(_DATE_PATTERN, text):
            raise _one(_("Enter a date as YYYY-MM-DD."))
        try:
            raw = dt.date.fromisoformat(text)
        except ValueError as exc:
            raise _one(_("This date does not exist.")) from exc
    if raw < EARLIEST_DATE or raw > timezone.localdate():
        raise _one(_("Enter a date between 1900 and today."))
    return raw


class ValueType:
    """How an item's value is checked, stored, returned to agencies and shown to the citizen."""

    kind = "text"

    def clean(self, raw: Any) -> str:
        raise NotImplementedError

    def parse(self, stored: str) -> Any:
        """The stored text as a JSON value, for agency systems."""
        return stored

    def display(self, stored: str) -> dict[str, Any]:
        """What a template needs to show the value: {"kind": ..., plus kind-specific keys}."""
        return {"kind": "text", "text": stored}

    def form_fields(
        self, *, prefix: str, label: Bilingual, value: str | None, errors: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        """Fields for includes/form_field.html, named `prefix` or `prefix.<sub-field>`."""
        raise NotImplementedError

    def from_form(self, data: Mapping[str, str], *, prefix: str) -> Any:
        return data.get(prefix, "")


@dataclass(frozen=True)
class TextType(ValueType):
    """Free text, or one of the formats below, normalised before it is stored."""

    max_length: int = MAX_TEXT
    format: str = "plain"  # plain | multiline | phone | email | national_id

    kind = "text"

    def clean(self, raw: Any) -> str:
        value = _check_text(raw, max_length=self.max_length)
        if self.format != "multiline" and "\n" in value:
            raise _one(_("Write this on one line."))
        if self.format == "phone":
            digits = re.sub(r"[\s.\-()]", "", value)
            if digits.startswith("+84"):
                digits = "0" + digits[3:]
            if not re.fullmatch(r"0\d{9,10}", digits, flags=re.ASCII):
                raise _one(_("Enter a Vietnamese phone number, for example 0901 234 567."))
            return digits
        if self.format == "email":
            try:
                validate_email(value)
            except ValidationError as exc:
                raise _one(_("Enter an e-mail address, for example ten@example.vn.")) from exc
            local, _at, domain = value.rpartition("@")
            return f"{local}@{domain.lower()}"
        if self.format == "national_id":
            digits = "".join(value.split())
            # ASCII digits only: the same number in another script would hash differently.
            if not re.fullmatch(r"\d{12}|\d{9}", digits, flags=re.ASCII):
                raise _one(_("A national ID number has 12 digits (or 9 on an old card)."))
            return digits
        return value

    def form_fields(
        self, *, prefix: str, label: Bilingual, value: str | None, errors: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        widget = {"multiline": "textarea", "phone": "tel", "email": "email"}.get(self.format, "text")
        autocomplete = {"phone": "tel", "email": "email", "multiline": "street-address"}.get(self.format, "")
        return [
            {
                "name": prefix,
                "label": str(label),
                "widget": widget,
                "value": value or "",
                "error": errors.get(""),
                "autocomplete": autocomplete,
                "required": True,
            }
        ]


@dataclass(frozen=True)
class DateType(ValueType):
    kind = "date"

    def clean(self, raw: Any) -> str:
        return _check_date(raw).isoformat()

    def display(self, stored: str) -> dict[str, Any]:
        try:
            return {"kind": "date", "date": dt.date.fromisoformat(stored)}
        except ValueError:
            return {"kind": "text", "text": stored}

    def form_fields(
        self, *, prefix: str, label: Bilingual, value: str | None, errors: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        return [
            {
                "name": prefix,
                "label": str(label),
                "widget": "date",
                "value": value or "",
                "error": errors.get(""),
                "required": True,
            }
        ]


@dataclass(frozen=True)
class ChoiceType(ValueType):
    choices: dict[str, Bilingual] = field(default_factory=dict)

    kind = "choice"

    def clean(self, raw: Any) -> str:
        if isinstance(raw, str) and raw.strip() in self.choices:
            return raw.strip()
        raise _one(_("Choose one of: %(choices)s.") % {"choices": _listing(self.choices)})

    def display(self, stored: str) -> dict[str, Any]:
        label = self.choices.get(stored)
        return {"kind": "text", "text": str(label) if label else stored}

    def form_fields(
        self, *, prefix: str, label: Bilingual, value: str | None, errors: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        return [
            {
                "name": prefix,
                "label": str(label),
                "widget": "select",
                "options": [(code, str(text)) for code, text in self.choices.items()],
                "value": value or "",
                "error": errors.get(""),
                "required": True,
            }
        ]


def _listing(choices: Mapping[str, Bilingual]) -> str:
    return ", ".join(f"{code} ({text})" for code, text in choices.items())


@dataclass(frozen=True)
class SubField:
    """One field of a structured value."""

    name: str
    label: Bilingual
    kind: str = "text"  # text | date | choice | year
    choices: dict[str, Bilingual] | None = None
    required: bool = True
    max_length: int = 200

    def schema(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"enum": list(self.choices or {})}
        if self.kind == "year":
            return {"type": "integer", "minimum": 1900, "maximum": 2100}
        if self.kind == "date":
            return {"type": "string", "pattern": _DATE_PATTERN}
        return {"type": "string", "minLength": 1, "maxLength": self.max_length}


@dataclass(frozen=True)
class StructuredType(ValueType):
    """A JSON object, or a list of them (`many`), checked against a small JSON Schema built from
    its sub-fields; stored as canonical JSON text."""

    fields: tuple[SubField, ...] = ()
    many: bool = False
    max_items: int = 20

    kind = "structured"

    def schema(self) -> dict[str, Any]:
        entry = {
            "type": "object",
            "properties": {f.name: f.schema() for f in self.fields},
            "required": [f.name for f in self.fields if f.required],
            "additionalProperties": False,
        }
        if self.many:
            return {"type": "array", "items": entry, "maxItems": self.max_items}
        return entry

    def _field(self, name: str) -> SubField | None:
        return next((f for f in self.fields if f.name == name), None)

    def clean(self, raw: Any) -> str:
        if self.many and not isinstance(raw, list):
            raise _one(_("Give a list of entries."))
        if not self.many and not isinstance(raw, dict):
            raise _one(_("Give an object with the fields: %(fields)s.") % {"fields": self._names()})
        value = _strip_strings(raw)
        errors: dict[str, str] = {}
        summary: list[str] = []
        for path, message in self._problems(value):
            if path not in errors:
                errors[path] = message
                summary.append(self._where(path) + message)
        if errors:
            raise ItemValueError(errors, summary)
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    def _names(self) -> str:
        return ", ".join(f.name for f in self.fields)

    def _problems(self, value: Any) -> Iterator[tuple[str, str]]:
        validator = Draft202012Validator(self.schema())
        for error in sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.path]):
            path = [str(p) for p in error.path]
            yield from self._translate(error.validator, error.validator_value, error.instance, path)
        entries = value if isinstance(value, list) else [value]
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            for sub in self.fields:
                item = entry.get(sub.name)
                if sub.kind == "text" and isinstance(item, str) and ("\n" in item or _CONTROL.search(item)):
                    yield (
                        self._path(index, sub.name),
                        _("Write this on one line, without control characters."),
                    )
                if sub.kind == "date" and isinstance(item, str) and re.match(_DATE_PATTERN, item):
                    try:
                        _check_date(item)
                    except ItemValueError as exc:
                        yield self._path(index, sub.name), exc.errors[""]

    def _path(self, index: int, name: str) -> str:
        return f"{index}.{name}" if self.many else name

    def _translate(
        self, validator: Any, expected: Any, instance: Any, path: list[str]
    ) -> Iterator[tuple[str, str]]:
        where = ".".join(path)
        sub = self._field(path[-1]) if path and not path[-1].isdigit() else None
        if validator == "required":
            for name in expected:
                if isinstance(instance, dict) and name not in instance:
                    yield (f"{where}.{name}" if where else name), _("This is required.")
        elif validator == "additionalProperties":
            extra = sorted(set(instance) - {f.name for f in self.fields})
            yield (
                where,
                _("Unknown fields: %(fields)s. Use only: %(allowed)s.")
                % {
                    "fields": ", ".join(extra),
                    "allowed": self._names(),
                },
            )
        elif validator == "maxItems":
            yield where, _("Give at most %(n)d entries.") % {"n": expected}
        elif validator == "enum" and sub is not None:
            yield where, _("Choose one of: %(choices)s.") % {"choices": _listing(sub.choices or {})}
        elif sub is not None and sub.kind == "year":
            yield where, _("Enter a year between 1900 and 2100.")
        elif sub is not None and sub.kind == "date":
            yield where, _("Enter a date as YYYY-MM-DD.")
        elif validator == "maxLength":
            yield where, _("Use at most %(n)d characters.") % {"n": expected}
        elif validator == "minLength":
            yield where, _("Enter a value.")
        elif sub is not None:
            yield where, _("Enter the value as text.")
        elif path and path[-1].isdigit():
            yield (
                where,
                _("Each entry must be an object with the fields: %(fields)s.") % {"fields": self._names()},
            )
        else:
            yield where, _("This value does not have the expected shape.")

    def _where(self, path: str) -> str:
        if not path:
            return ""
        parts = path.split(".")
        words = []
        if parts[0].isdigit():
            words.append(_("Entry %(n)d") % {"n": int(parts[0]) + 1})
            parts = parts[1:]
        if parts and (sub := self._field(parts[0])):
            words.append(str(sub.label))
        return (", ".join(words) + ": ") if words else ""

    def parse(self, stored: str) -> Any:
        return json.loads(stored)

    def display(self, stored: str) -> dict[str, Any]:
        try:
            value = json.loads(stored)
        except ValueError:
            return {"kind": "text", "text": stored}
        entries = value if isinstance(value, list) else [value]
        rows = [self._rows(entry) for entry in entries if isinstance(entry, dict)]
        return {"kind": "structured", "many": self.many, "entries": rows}

    def _rows(self, entry: dict[str, Any]) -> list[tuple[str, str]]:
        rows = []
        for sub in self.fields:
            if sub.name not in entry:
                continue
            raw = entry[sub.name]
            text = str((sub.choices or {}).get(raw, raw)) if sub.kind == "choice" else str(raw)
            rows.append((str(sub.label), text))
        return rows

    def form_fields(
        self, *, prefix: str, label: Bilingual, value: str | None, errors: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        current: dict[str, Any] = {}
        if value:
            try:
                loaded = json.loads(value)
                current = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                current = {}
        widgets = {"text": "text", "date": "date", "choice": "select", "year": "number"}
        return [
            {
                "name": f"{prefix}.{sub.name}",
                "label": str(sub.label),
                "widget": widgets[sub.kind],
                "options": [(code, str(text)) for code, text in (sub.choices or {}).items()],
                "value": current.get(sub.name, ""),
                "error": errors.get(sub.name) or (errors.get("") if index == 0 else None),
                "required": sub.required,
            }
            for index, sub in enumerate(self.fields)
        ]

    def from_form(self, data: Mapping[str, str], *, prefix: str) -> Any:
        value: dict[str, Any] = {}
        for sub in self.fields:
            raw = (data.get(f"{prefix}.{sub.name}") or "").strip()
            if not raw:
                if sub.required:
                    value[sub.name] = ""
                continue
            value[sub.name] = int(raw) if sub.kind == "year" and raw.isdigit() and len(raw) < 6 else raw
        return value


def _strip_strings(value: Any) -> Any:
    """Trim the text of each entry's fields; deeper values are left for the schema to refuse."""

    def entry(item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        return {k: v.strip() if isinstance(v, str) else v for k, v in item.items()}

    return [entry(v) for v in value] if isinstance(value, list) else entry(value)


@dataclass(frozen=True)
class ItemDefinition:
    """One kind of fact about a person.

    identifies: a person can be found by it (its keyed hash is stored beside the value).
    declarable: the citizen may state it while no agency of record holds it.
    correctable: the citizen may change it even when an agency recorded it (contact details).
    """

    key: str
    label: Bilingual
    type: ValueType
    identifies: bool = False
    declarable: bool = False
    correctable: bool = False
    help: Bilingual | None = None

    @property
    def citizen_editable(self) -> bool:
        return self.declarable or self.correctable

    def clean(self, raw: Any) -> str:
        return self.type.clean(raw)


_REGISTRY: dict[str, ItemDefinition] = {}


class UnknownItem(KeyError):
    pass


def register(definition: ItemDefinition) -> ItemDefinition:
    if definition.key in _REGISTRY:
        raise ValueError(f"Profile item {definition.key!r} is registered twice")
    if definition.citizen_editable and isinstance(definition.type, StructuredType) and definition.type.many:
        raise ValueError(f"Profile item {definition.key!r}: citizens can only edit single values")
    _REGISTRY[definition.key] = definition
    return definition


def get(key: str) -> ItemDefinition:
    try:
        return _REGISTRY[key]
    except KeyError as exc:
        raise UnknownItem(key) from exc


def all_items() -> list[ItemDefinition]:
    return list(_REGISTRY.values())


def keys() -> list[str]:
    return list(_REGISTRY)


B = Bilingual

register(ItemDefinition("full_name", B("Họ và tên", "Full name"), TextType(max_length=200)))
register(ItemDefinition("date_of_birth", B("Ngày sinh", "Date of birth"), DateType()))
register(
    ItemDefinition(
        "gender",
        B("Giới tính", "Gender"),
        ChoiceType(choices={"male": B("Nam", "Male"), "female": B("Nữ", "Female")}),
    )
)
register(
    ItemDefinition(
        "national_id",
        B("Số định danh cá nhân", "National ID number"),
        TextType(max_length=20, format="national_id"),
        identifies=True,
    )
)
register(ItemDefinition("address", B("Nơi thường trú", "Permanent address"), TextType(format="multiline")))
register(
    ItemDefinition(
        "current_address",
        B("Nơi ở hiện tại", "Current address"),
        TextType(format="multiline"),
        correctable=True,
        help=B(
            "Nơi bạn đang sống, nếu khác nơi thường trú.",
            "Where you live now, if it is not your permanent address.",
        ),
    )
)
register(
    ItemDefinition(
        "phone",
        B("Số điện thoại", "Phone number"),
        TextType(max_length=20, format="phone"),
        identifies=True,
        correctable=True,
    )
)
register(
    ItemDefinition(
        "email",
        B("Thư điện tử", "E-mail address"),
        TextType(max_length=254, format="email"),
        identifies=True,
        correctable=True,
    )
)
register(
    ItemDefinition(
        "marital_status",
        B("Tình trạng hôn nhân", "Marital status"),
        ChoiceType(
            choices={
                "single": B("Chưa kết hôn", "Single"),
                "married": B("Đã kết hôn", "Married"),
                "divorced": B("Đã ly hôn", "Divorced"),
                "widowed": B("Góa", "Widowed"),
            }
        ),
    )
)
register(
    ItemDefinition(
        "household_members",
        B("Thành viên hộ gia đình", "Household members"),
        StructuredType(
            many=True,
            fields=(
                SubField("name", B("Họ và tên", "Name")),
                SubField(
                    "relationship",
                    B("Quan hệ với chủ hộ", "Relationship to the head of household"),
                    kind="choice",
                    choices={
                        "head": B("Chủ hộ", "Head of household"),
                        "spouse": B("Vợ/chồng", "Spouse"),
                        "child": B("Con", "Child"),
                        "parent": B("Cha/mẹ", "Parent"),
                        "sibling": B("Anh/chị/em", "Brother or sister"),
                        "grandchild": B("Cháu", "Grandchild"),
                        "other": B("Khác", "Other"),
                    },
                ),
                SubField("date_of_birth", B("Ngày sinh", "Date of birth"), kind="date"),
            ),
        ),
    )
)
register(
    ItemDefinition(
        "vehicle",
        B("Phương tiện đã đăng ký", "Registered vehicles"),
        StructuredType(
            many=True,
            fields=(
                SubField("plate", B("Biển số", "Number plate"), max_length=20),
                SubField(
                    "kind",
                    B("Loại xe", "Kind of vehicle"),
                    kind="choice",
                    choices={
                        "motorbike": B("Xe mô tô, xe gắn máy", "Motorbike or moped"),
                        "car": B("Ô tô", "Car"),
                        "truck": B("Xe tải", "Truck"),
                        "other": B("Khác", "Other"),
                    },
                ),
            ),
        ),
    )
)
register(
    ItemDefinition(
        "education",
        B("Trình độ học vấn", "Education"),
        StructuredType(
            fields=(
                SubField(
                    "level",
                    B("Bậc học cao nhất", "Highest level completed"),
                    kind="choice",
                    choices={
                        "primary": B("Tiểu học", "Primary school"),
                        "lower_secondary": B("Trung học cơ sở", "Lower secondary school"),
                        "upper_secondary": B("Trung học phổ thông", "Upper secondary school"),
                        "vocational": B("Trung cấp, cao đẳng", "Vocational college"),
                        "bachelor": B("Đại học", "University degree"),
                        "postgraduate": B("Sau đại học", "Postgraduate degree"),
                    },
                ),
                SubField("institution", B("Cơ sở đào tạo", "School or university"), required=False),
                SubField("year", B("Năm tốt nghiệp", "Year completed"), kind="year", required=False),
            ),
        ),
        declarable=True,
    )
)
