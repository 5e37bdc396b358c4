from __future__ import annotations

import pytest

from civicore.catalogue.definitions import checksum, validate_definition
from civicore.catalogue.tests.factories import SHIPPED, definition


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_definition_is_valid(path):
    from civicore.catalogue.definitions import load_file

    data = load_file(path)
    assert validate_definition(data) == []
    assert data["code"] == path.stem


def test_at_least_five_services_ship():
    assert {p.stem for p in SHIPPED} >= {
        "birth-registration",
        "permanent-residence-registration",
        "household-business-registration",
        "small-house-construction-permit",
        "park-event-permit",
    }


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_definitions_prefill_the_verified_identity(path):
    from civicore.catalogue.definitions import load_file

    data = load_file(path)
    assert data["prefill"] == {
        "applicant_full_name": "full_name",
        "applicant_date_of_birth": "date_of_birth",
        "applicant_national_id": "national_id",
        "applicant_address": "address",
    }
    own = [f for f in data["form"]["fields"] if not f["name"].startswith("applicant_")]
    assert 4 <= len(own) <= 8
    assert any(doc["required"] for doc in data["documents"])


@pytest.mark.parametrize("bad", [None, [], "code: x", 42])
def test_a_definition_that_is_not_a_mapping_is_refused(bad):
    assert validate_definition(bad) == ["(definition): must be a mapping of keys to values"]


def test_missing_section_is_named():
    data = definition()
    del data["workflow"]
    assert validate_definition(data) == ["(definition): 'workflow' is a required property"]


def test_errors_carry_their_path():
    data = definition()
    data["form"]["fields"][0]["widget"] = "slider"
    data["fee"]["amount"] = -5
    errors = validate_definition(data)
    assert any(e.startswith("form.fields[0].widget: 'slider' is not one of") for e in errors)
    assert "fee.amount: -5 is less than the minimum of 0" in errors


def test_bad_code_slug_and_unknown_keys():
    errors = validate_definition(definition(code="Birth Registration!", colour="red"))
    assert any(e.startswith("code: 'Birth Registration!' does not match") for e in errors)
    assert any("'colour' was unexpected" in e for e in errors)


def test_prefill_target_must_be_a_form_field():
    data = definition()
    data["prefill"]["spouse_name"] = "full_name"
    assert validate_definition(data) == ["prefill.spouse_name: 'spouse_name' is not a form field"]


def test_prefill_source_must_be_a_profile_item():
    data = definition()
    data["prefill"]["applicant_full_name"] = "password"
    errors = validate_definition(data)
    assert len(errors) == 1 and errors[0].startswith("prefill.applicant_full_name: 'password' is not one of")


def test_required_field_must_exist():
    data = definition()
    data["form"]["schema"]["required"].append("child_nickname")
    assert validate_definition(data) == [
        "form.schema.required[10]: 'child_nickname' is required but not defined in properties"
    ]


def test_every_property_needs_a_field_and_every_field_a_property():
    data = definition()
    data["form"]["fields"] = [f for f in data["form"]["fields"] if f["name"] != "father_full_name"]
    data["form"]["fields"].append(
        {"name": "pet_name", "label": {"vi": "Tên", "en": "Name"}, "widget": "text"}
    )
    errors = validate_definition(data)
    assert "form.fields: property 'father_full_name' has no field entry" in errors
    last = len(data["form"]["fields"]) - 1
    assert f"form.fields[{last}].name: 'pet_name' is not a property of form.schema" in errors


def test_workflow_transitions_must_use_declared_states():
    data = definition()
    data["workflow"]["transitions"][0]["to"] = "claimed"
    data["workflow"]["transitions"][1]["from"] = ["limbo"]
    errors = validate_definition(data)
    assert "workflow.transitions[0].to: 'claimed' is not a declared state" in errors
    assert "workflow.transitions[1].from[0]: 'limbo' is not a declared state" in errors


def test_unreachable_state_is_reported():
    data = definition()
    data["workflow"]["states"].append("archived")
    assert validate_definition(data) == ["workflow.states: no transition leads to 'archived'"]


def test_roles_are_limited():
    data = definition()
    data["workflow"]["transitions"][3]["role"] = "mayor"
    errors = validate_definition(data)
    assert errors == [
        "workflow.transitions[3].role: 'mayor' is not one of ['caseworker', 'supervisor', 'applicant']"
    ]


def test_select_options_must_match_the_enum():
    data = definition()
    gender = next(f for f in data["form"]["fields"] if f["name"] == "child_gender")
    gender["options"] = [{"value": "male", "label": {"vi": "Nam", "en": "Male"}}]
    errors = validate_definition(data)
    assert len(errors) == 1
    assert errors[0].startswith("form.fields[7].options: options ['male'] do not match the schema enum")
    assert "missing ['female']" in errors[0]


def test_radio_needs_options_and_an_enum():
    data = definition()
    name = data["form"]["fields"][5]
    name["widget"] = "radio"
    errors = validate_definition(data)
    assert errors == ["form.fields[5].options: a radio field needs options"]
    name["options"] = [{"value": "x", "label": {"vi": "x", "en": "x"}}]
    assert validate_definition(data) == [
        "form.fields[5].options: form.schema property 'child_full_name' has no enum to match"
    ]


def test_date_widget_needs_date_format():
    data = definition()
    del data["form"]["schema"]["properties"]["child_date_of_birth"]["format"]
    assert validate_definition(data) == [
        "form.fields[6].widget: a date field needs 'format: date' in its schema property"
    ]


def test_form_schema_must_itself_be_valid_json_schema():
    data = definition()
    data["form"]["schema"]["properties"]["child_full_name"]["type"] = "strnig"
    errors = validate_definition(data)
    assert len(errors) == 1 and errors[0].startswith("form.schema.properties.child_full_name.type:")


def test_form_schema_may_not_fetch_remote_references():
    data = definition()
    data["form"]["schema"]["properties"]["child_full_name"] = {"$ref": "https://attacker.example/schema.json"}
    assert validate_definition(data) == [
        "form.schema.properties.child_full_name.$ref: only local references (starting with '#') are allowed"
    ]


def test_result_placeholders_must_be_known():
    data = definition()
    data["result"]["fields"][0]["value"] = "{answers.nickname} {applicant.password}"
    errors = validate_definition(data)
    assert errors == [
        "result.fields[0].value: unknown placeholder '{answers.nickname}'",
        "result.fields[0].value: unknown placeholder '{applicant.password}'",
    ]


def test_document_types_are_limited_to_safe_formats():
    data = definition()
    data["documents"][0]["types"] = ["application/x-msdownload"]
    errors = validate_definition(data)
    assert len(errors) == 1 and errors[0].startswith("documents[0].types[0]: 'application/x-msdownload'")


def test_checksum_ignores_key_order_but_not_content():
    data = definition()
    reordered = dict(reversed(list(data.items())))
    assert checksum(reordered) == checksum(data)
    assert checksum(definition(sla_working_days=2)) != checksum(data)
