"""Turn the old free-text `source` of each profile item into provenance.

"declared" becomes a declared item; an agency code becomes that agency; any other text (older
installations wrote the register's name) becomes an agency of that name, created once, so no
provenance is lost. Identifying items get their lookup hash. Values are only decrypted, never
written, so this needs nothing from the key store; history starts with the next change.
Runs on its own (no schema change in this migration), so PostgreSQL has no pending triggers.
"""

from django.db import migrations
from django.utils.text import slugify

from civicore.core.crypto import lookup_hash

IDENTIFYING = ("national_id", "phone", "email")


def _agency_for(Agency, source, cache):
    if source not in cache:
        agency = Agency.objects.filter(code=source).first()
        if agency is None:
            code = (slugify(source) or "source")[:50].strip("-") or "source"
            agency, _created = Agency.objects.get_or_create(
                code=f"legacy-{code}", defaults={"name_vi": source[:300], "name_en": source[:300]}
            )
        cache[source] = agency
    return cache[source]


def forwards(apps, schema_editor):
    ProfileItem = apps.get_model("identity", "ProfileItem")
    Agency = apps.get_model("agencies", "Agency")
    cache = {}
    items = list(ProfileItem.objects.order_by("pk"))
    for item in items:
        source = (item.source or "").strip()
        if not source or source.lower() == "declared":
            item.source_kind, item.agency = "declared", None
        else:
            item.source_kind, item.agency = "agency", _agency_for(Agency, source, cache)
        if item.key in IDENTIFYING and item.value:
            item.lookup_hash = lookup_hash(item.value, purpose=item.key)
    ProfileItem.objects.bulk_update(items, ["source_kind", "agency", "lookup_hash"], batch_size=500)


def backwards(apps, schema_editor):
    ProfileItem = apps.get_model("identity", "ProfileItem")
    items = list(ProfileItem.objects.select_related("agency").order_by("pk"))
    for item in items:
        item.source = item.agency.code if item.agency_id else "declared"
    ProfileItem.objects.bulk_update(items, ["source"], batch_size=500)


class Migration(migrations.Migration):

    dependencies = [
        ('identity', '0002_profile_provenance_and_history'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
