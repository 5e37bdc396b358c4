"""City sensors: device types and devices, their readings and rollups, rules that act, the commands
sent to actuators, alarms for officers, and what ingestion refused.

A device belongs to an agency and a group (a park, a district); it has its own MQTT credentials,
kept in the broker (Mosquitto's dynamic-security plugin), and an HTTPS token kept here as a keyed
hash. Readings are keyed by (device, quantity, time), so a message delivered twice is stored once;
on PostgreSQL the table is partitioned by day with a BRIN index on time. Rollups (5 minutes, hour,
day) are maintained as readings arrive. Rules are data, versioned: each edit is a new RuleVersion
and every firing records the version and the readings that caused it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


def _bilingual(vi: str, en: str) -> str:
    if (get_language() or "vi").startswith("en") and en:
        return en
    return vi


class DeviceType(models.Model):
    """What a kind of device measures or does.

    `quantities`: [{"name": "soil_moisture", "unit": "%", "min": 0, "max": 100,
    "label_vi": "...", "label_en": "..."}]; `commands`: [{"name": "open", "params": {...}}].
    An actuator's `max_run_s` is the interlock: whatever happens, it is told to stop after that.
    """

    class Role(models.TextChoices):
        SENSOR = "sensor", _("Sensor")
        ACTUATOR = "actuator", _("Actuator")

    code = models.SlugField(max_length=60, unique=True)
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="device_types")
    name_vi = models.CharField(max_length=200)
    name_en = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.SENSOR)
    quantities = models.JSONField(default=list, blank=True)
    commands = models.JSONField(default=list, blank=True)
    expected_interval_s = models.PositiveIntegerField(default=300, validators=[MinValueValidator(1)])
    offline_after_intervals = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1)])
    retention_days = models.PositiveIntegerField(default=400, validators=[MinValueValidator(1)])
    # Per-device flood limit: messages per minute accepted from one device of this type.
    rate_per_minute = models.PositiveIntegerField(default=600, validators=[MinValueValidator(1)])
    max_run_s = models.PositiveIntegerField(null=True, blank=True)
    command_timeout_s = models.PositiveIntegerField(default=30, validators=[MinValueValidator(1)])
    command_retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return _bilingual(self.name_vi, self.name_en)

    def quantity(self, name: str) -> dict | None:
        for item in self.quantities:
            if item.get("name") == name:
                return item
        return None

    def command_names(self) -> list[str]:
        return [str(item.get("name")) for item in self.commands]


class Device(models.Model):
    class Status(models.TextChoices):
        REGISTERED = "registered", _("Registered, not provisioned")
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")

    device_id = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    device_type = models.ForeignKey(DeviceType, on_delete=models.PROTECT, related_name="devices")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="devices")
    # The park or district a device serves; rules and queries address devices by group.
    group = models.SlugField(max_length=80, blank=True)
    district = models.CharField(max_length=120, blank=True)
    latitude = models.FloatField(validators=[MinValueValidator(-90), MaxValueValidator(90)])
    longitude = models.FloatField(validators=[MinValueValidator(-180), MaxValueValidator(180)])
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.REGISTERED)
    credential_version = models.PositiveIntegerField(default=0)
    credential_issued_at = models.DateTimeField(null=True, blank=True)
    # Keyed hash of the HTTPS device token (never the token itself).
    http_token_hash = models.CharField(max_length=64, blank=True, db_index=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # {"soil_moisture": [value, "2026-12-05T05:00:00+00:00"], ...}
    last_values = models.JSONField(default=dict, blank=True)
    accepted_count = models.BigIntegerField(default=0)
    rejected_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["device_id"]
        indexes = [models.Index(fields=["agency", "group"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.device_id})"

    @property
    def mqtt_username(self) -> str:
        return self.device_id

    def offline_after(self) -> timedelta:
        kind = self.device_type
        return timedelta(seconds=kind.expected_interval_s * kind.offline_after_intervals)

    def is_online(self, now=None) -> bool:
        if self.last_seen_at is None:
            return False
        return (now or timezone.now()) - self.last_seen_at <= self.offline_after()


class Reading(models.Model):
    """One value of one quantity at one time. The key makes a retransmitted reading a no-op."""

    pk = models.CompositePrimaryKey("device_id", "quantity", "time")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    quantity = models.CharField(max_length=40)
    time = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        indexes = [models.Index(fields=["time"], name="sensors_reading_time")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.quantity} {self.time:%Y-%m-%d %H:%M:%S} = {self.value}"


class Rollup(models.Model):
    """Count, sum, minimum and maximum of a quantity per device in a 5-minute, hour or day bucket."""

    class Period(models.TextChoices):
        FIVE_MINUTES = "5m", _("5 minutes")
        HOUR = "1h", _("Hour")
        DAY = "1d", _("Day")

    pk = models.CompositePrimaryKey("device_id", "quantity", "period", "bucket")
    # The primary key starts with the device: a second index on it alone would only slow writes.
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    quantity = models.CharField(max_length=40)
    period = models.CharField(max_length=2, choices=Period.choices)
    bucket = models.DateTimeField()
    count = models.BigIntegerField()
    total = models.FloatField()
    minimum = models.FloatField()
    maximum = models.FloatField()

    def __str__(self) -> str:
        return f"{self.device_id} {self.quantity} {self.period} {self.bucket:%Y-%m-%d %H:%M}"

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


class Rejection(models.Model):
    """A message or record ingestion refused, with why; kept for officers to see."""

    class Reason(models.TextChoices):
        MALFORMED = "malformed", _("Not valid SenML")
        TOO_LARGE = "too_large", _("Message over the size limit")
        UNKNOWN_DEVICE = "unknown_device", _("Unknown or revoked device")
        WRONG_TOPIC = "wrong_topic", _("Record names another device")
        UNKNOWN_QUANTITY = "unknown_quantity", _("Quantity not measured by this device type")
        WRONG_UNIT = "wrong_unit", _("Unit does not match the device type")
        OUT_OF_RANGE = "out_of_range", _("Value outside the plausible range")
        FUTURE = "future", _("Timestamp in the future")
        TOO_OLD = "too_old", _("Timestamp older than the device type keeps readings")
        RATE_LIMITED = "rate_limited", _("Device over its message rate")
        NOT_A_NUMBER = "not_a_number", _("Record has no numeric value")

    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.CASCADE, related_name="rejections"
    )
    device_ref = models.CharField(max_length=80, blank=True)
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=300, blank=True)
    excerpt = models.CharField(max_length=200, blank=True)
    # Records or messages this row stands for (a flood is kept as one row per minute).
    count = models.PositiveIntegerField(default=1)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["device", "-received_at"])]

    def __str__(self) -> str:
        return f"{self.device_ref} {self.reason} x{self.count}"


class Rule(models.Model):
    """A rule owned by an agency; what it does is its current version's definition."""

    code = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=200)
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="sensor_rules")
    enabled = models.BooleanField(default=True)
    current_version = models.ForeignKey(
        "RuleVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class RuleVersion(models.Model):
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["rule", "-number"]
        constraints = [models.UniqueConstraint(fields=["rule", "number"], name="sensors_ruleversion_unique")]

    def __str__(self) -> str:
        return f"{self.rule_id} v{self.number}"


class RuleState(models.Model):
    """Where a rule stands for one subject (a device): in the database, so any ingest process can
    pick up where another left off."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="states")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="+")
    active = models.BooleanField(default=False)
    # When the condition first held without interruption (for a minimum duration).
    pending_since = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(default=timezone.now)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "device"], name="sensors_rulestate_unique")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.device_id} {'active' if self.active else 'idle'}"


class RuleFiring(models.Model):
    class Kind(models.TextChoices):
        FIRED = "fired", _("Fired")
        CLEARED = "cleared", _("Cleared")

    rule_version = models.ForeignKey(RuleVersion, on_delete=models.PROTECT, related_name="firings")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="firings")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    # The readings that made the condition hold: [{"device", "quantity", "time", "value"}, ...].
    readings = models.JSONField(default=list, blank=True)
    actions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.rule_version_id} {self.kind} {self.device_id} {self.at:%Y-%m-%d %H:%M:%S}"


class Command(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENT = "sent", _("Sent, waiting for the device")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged by the device")
        FAILED = "failed", _("Failed")
        TIMED_OUT = "timed_out", _("No acknowledgement")
        REFUSED = "refused", _("Refused: device offline or revoked")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="device_commands")
    name = models.CharField(max_length=40)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    firing = models.ForeignKey(
        RuleFiring, null=True, blank=True, on_delete=models.SET_NULL, related_name="commands"
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # An interlock command (the stop after an actuator's maximum run time).
    interlock = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "deadline"])]

    def __str__(self) -> str:
        return f"{self.name} -> {self.device_id} ({self.status})"


class Alarm(models.Model):
    class Severity(models.TextChoices):
        INFO = "info", _("Information")
        WARNING = "warning", _("Warning")
        CRITICAL = "critical", _("Critical")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        CLEARED = "cleared", _("Cleared")

    rule = models.ForeignKey(Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alarms")
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="alarms")
    agency = models.ForeignKey("agencies.Agency", on_delete=models.PROTECT, related_name="sensor_alarms")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    message = models.CharField(max_length=300)
    status = models.CharField(max_length=14, choices=Status.choices, default=Status.ACTIVE)
    firing = models.ForeignKey(
        RuleFiring, null=True, blank=True, on_delete=models.SET_NULL, related_name="alarms"
    )
    raised_at = models.DateTimeField(default=timezone.now, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        indexes = [models.Index(fields=["agency", "status"])]

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"
