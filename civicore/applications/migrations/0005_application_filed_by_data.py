"""Every application filed so far was filed by its applicant for themselves."""

from django.db import migrations
from django.db.models import F


def filed_by_applicant(apps, schema_editor):
    Application = apps.get_model("applications", "Application")
    Application.objects.filter(filed_by__isnull=True).update(filed_by=F("applicant"))


class Migration(migrations.Migration):

    dependencies = [
        ("applications", "0004_application_organisation_and_filed_by"),
    ]

    operations = [
        migrations.RunPython(filed_by_applicant, migrations.RunPython.noop),
    ]
