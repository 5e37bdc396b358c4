"""Everyone registered before assurance levels existed came from an agency of record through
person_register: they are verified (level 2) since their registration, by the agency that
recorded their national ID number."""

from django.db import migrations


def verify_existing(apps, schema_editor):
    Person = apps.get_model("identity", "Person")
    ProfileItem = apps.get_model("identity", "ProfileItem")
    vouching = dict(
        ProfileItem.objects.filter(key="national_id", agency__isnull=False).values_list("person_id", "agency_id")
    )
    for person in Person.objects.filter(assurance_level=1).only("pk", "created_at").iterator():
        Person.objects.filter(pk=person.pk).update(
            assurance_level=2,
            assurance_verified_at=person.created_at,
            assurance_verified_by_id=vouching.get(person.pk),
        )


class Migration(migrations.Migration):
    dependencies = [
        ("identity", "0005_person_assurance_level"),
    ]

    operations = [
        migrations.RunPython(verify_existing, migrations.RunPython.noop),
    ]
