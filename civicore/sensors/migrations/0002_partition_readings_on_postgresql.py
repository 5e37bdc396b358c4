"""On PostgreSQL, readings live in a table partitioned by day on `time`, with a BRIN index on time
(readings arrive in time order, so a BRIN index is small and fast). Partitions are created by
ingestion as days arrive (civicore.sensors.storage.ensure_partitions) and dropped by retention.
SQLite keeps the plain table of the previous migration: the same columns and key."""

from django.db import migrations

FORWARD = [
    "DROP TABLE sensors_reading",
    """CREATE TABLE sensors_reading (
        device_id bigint NOT NULL,
        quantity varchar(40) NOT NULL,
        time timestamp with time zone NOT NULL,
        value double precision NOT NULL,
        PRIMARY KEY (device_id, quantity, time)
    ) PARTITION BY RANGE (time)""",
    "CREATE INDEX sensors_reading_time ON sensors_reading USING brin (time)",
]

BACKWARD = [
    "DROP TABLE sensors_reading",
    """CREATE TABLE sensors_reading (
        device_id bigint NOT NULL,
        quantity varchar(40) NOT NULL,
        time timestamp with time zone NOT NULL,
        value double precision NOT NULL,
        PRIMARY KEY (device_id, quantity, time)
    )""",
    "CREATE INDEX sensors_reading_time ON sensors_reading (time)",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("sensors", "0001_devices_readings_rules")]

    operations = [migrations.RunPython(_run(FORWARD), _run(BACKWARD))]
