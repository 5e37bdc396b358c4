"""Indexes nothing reads: every write of a payment, an event or a statement line pays for each.

The agency alone is served by (agency, created_at). References and event keys are looked up
whole, never by prefix, so the `_like` (varchar_pattern_ops) indexes PostgreSQL gets for unique
text columns go.
"""

import django.db.models.deletion
from django.db import migrations, models

_LIKE = (
    ("payments_payment", "reference", "payments_payment_reference_1d502039_like"),
    ("payments_paymentevent", "key", "payments_paymentevent_key_3abe2637_like"),
)


def _drop_like(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for _table, _column, name in _LIKE:
            schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


def _create_like(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, column, name in _LIKE:
            schema_editor.execute(
                f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}" varchar_pattern_ops)'
            )


class Migration(migrations.Migration):
    dependencies = [
        ("agencies", "0005_remove_officer_single_role"),
        ("payments", "0002_receipt"),
    ]

    operations = [
        migrations.AlterField(
            model_name="payment",
            name="agency",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="payments",
                to="agencies.agency",
            ),
        ),
        migrations.RunPython(_drop_like, _create_like),
    ]
