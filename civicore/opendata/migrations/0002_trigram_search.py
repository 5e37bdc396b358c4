"""Install PostgreSQL's pg_trgm extension, which the datastore uses to index text columns for
`q` (substring search). It is a trusted extension: a database owner may create it. Where the role
may not, the datastore works without it and `q` reads the whole table."""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)


def install_trigrams(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        logger.warning("pg_trgm is not installed (%s): datastore text search will scan tables", error)


class Migration(migrations.Migration):
    dependencies = [("opendata", "0001_initial")]

    operations = [migrations.RunPython(install_trigrams, migrations.RunPython.noop)]
