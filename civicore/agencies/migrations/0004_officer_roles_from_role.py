"""Each officer's single role becomes a set of roles with named permissions: a caseworker stays
a caseworker (case.view); a supervisor, who could do everything, becomes decider (case.view,
case.decide) and agency_admin (agency.admin, systems.manage). Going back keeps the strongest."""

from django.db import migrations

FORWARD = {"caseworker": ["caseworker"], "supervisor": ["decider", "agency_admin"]}


def roles_from_role(apps, schema_editor):
    Officer = apps.get_model("agencies", "Officer")
    for officer in Officer.objects.all().only("pk", "role"):
        officer.roles = FORWARD.get(officer.role, [])
        officer.save(update_fields=["roles"])


def role_from_roles(apps, schema_editor):
    Officer = apps.get_model("agencies", "Officer")
    for officer in Officer.objects.all().only("pk", "roles"):
        roles = set(officer.roles or [])
        officer.role = "supervisor" if roles & {"decider", "agency_admin"} else "caseworker"
        officer.save(update_fields=["role"])


class Migration(migrations.Migration):

    dependencies = [
        ("agencies", "0003_officer_roles_and_teams"),
    ]

    operations = [
        migrations.RunPython(roles_from_role, role_from_roles),
    ]
