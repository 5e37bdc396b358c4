"""The move from one role per officer to roles with named permissions keeps what each officer
could do: a caseworker stays a caseworker; a supervisor decides and administers."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("agencies", "0002_initial")]
AFTER = [("agencies", "0005_remove_officer_single_role")]


@pytest.mark.django_db(transaction=True)
def test_single_roles_become_role_sets() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    agency = old.get_model("agencies", "Agency").objects.create(code="xa-thu", name_vi="Xã Thử", name_en="")
    users = old.get_model("identity", "User").objects
    officers = old.get_model("agencies", "Officer").objects
    for name, role in (("cw", "caseworker"), ("sv", "supervisor")):
        user = users.create(username=name, email=f"{name}@example.test")
        officers.create(user=user, agency=agency, role=role)
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        from civicore.agencies.models import Officer

        roles = {officer.user.username: officer.roles for officer in Officer.objects.select_related("user")}
        assert roles == {"cw": ["caseworker"], "sv": ["decider", "agency_admin"]}
        supervisor = Officer.objects.get(user__username="sv")
        assert {"case.view", "case.decide", "agency.admin", "systems.manage"} == supervisor.permissions
        # And back: the strongest role is kept.
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        back = (
            MigrationExecutor(connection).loader.project_state(BEFORE).apps.get_model("agencies", "Officer")
        )
        assert dict(back.objects.values_list("user__username", "role")) == {
            "cw": "caseworker",
            "sv": "supervisor",
        }
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
