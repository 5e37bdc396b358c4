from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from civicore.audit.models import AuditEntry
from civicore.routing.models import RoutingModel, TrainingExample
from civicore.routing.tests.conftest import EVAL


def run(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("routing", *args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 2
    message = str(caught.value)
    assert "\n" not in message
    return message


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# --- train / evaluate / predict ------------------------------------------------------------------


def test_train_evaluate_predict(small_csv: Path, tmp_path: Path) -> None:
    out = run(
        "train",
        "--input",
        str(small_csv),
        "--text",
        "text",
        "--label",
        "label",
        "--time",
        "time",
        "--output",
        str(tmp_path / "m"),
        "--precision",
        "0.9",
    )
    assert "latest 20% by time" in out and "threshold" in out
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["training_data"]["text_columns"] == ["text"]
    assert len(manifest["training_data"]["input_sha256"]) == 64

    report = run(
        "evaluate", "--model", str(tmp_path / "m"), "--input", str(EVAL), "--text", "text", "--label", "label"
    )
    figures = dict(line.split(" ", 1) for line in report.strip().splitlines())
    assert {"accuracy", "macro_f1", "top3_accuracy", "auto_routed", "auto_precision"} <= set(figures)
    assert 0.5 < float(figures["accuracy"]) <= float(figures["top3_accuracy"]) <= 1

    ids = write(
        tmp_path / "in.csv", "ref,subject,body\nA1,Đèn đường,hỏng cả tuần\nA2,,\nA3,Noise,karaoke all night\n"
    )
    out = run(
        "predict",
        "--model",
        str(tmp_path / "m"),
        "--input",
        str(ids),
        "--id",
        "ref",
        "--text",
        "subject",
        "--text",
        "body",
        "--output",
        str(tmp_path / "out.csv"),
    )
    assert "skipped 1 rows with empty text" in out
    rows = list(csv.DictReader((tmp_path / "out.csv").open(encoding="utf-8")))
    assert [r["id"] for r in rows] == ["A1", "A3"]
    assert list(rows[0]) == ["id", "label", "confidence", "top3", "routed"]
    assert rows[0]["label"] == "streetlight" and rows[1]["label"] == "noise"
    assert len(rows[0]["top3"].split("|")) == 3 and rows[0]["top3"].startswith("streetlight:")
    assert {r["routed"] for r in rows} <= {"auto", "triage"}


def test_empty_text_rows_are_skipped_and_counted(small_csv: Path, tmp_path: Path) -> None:
    text = small_csv.read_text(encoding="utf-8") + ",waste,vi,2025-06-01T00:00:00+00:00\n"
    source = write(tmp_path / "with-empty.csv", text)
    out = run(
        "train", "--input", str(source), "--text", "text", "--label", "label", "--output", str(tmp_path / "m")
    )
    assert "skipped 1 rows with empty text" in out
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["training_data"]["skipped_empty"] == 1


# --- bad input: exit code 2 with one line ---------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in refused(
        "train",
        "--input",
        str(tmp_path / "nope.csv"),
        "--text",
        "text",
        "--label",
        "label",
        "--output",
        str(tmp_path / "m"),
    )


def test_missing_columns(small_csv: Path, tmp_path: Path) -> None:
    message = refused(
        "train",
        "--input",
        str(small_csv),
        "--text",
        "body",
        "--label",
        "label",
        "--output",
        str(tmp_path / "m"),
    )
    assert "missing column(s) body" in message


@pytest.mark.parametrize("content", ["", "text,label\n"], ids=["no bytes", "header only"])
def test_empty_csv(tmp_path: Path, content: str) -> None:
    source = write(tmp_path / "empty.csv", content)
    message = refused(
        "train", "--input", str(source), "--text", "text", "--label", "label", "--output", str(tmp_path / "m")
    )
    assert "empty" in message or "no rows" in message


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    source = write(tmp_path / "latin.csv", "text,label\nđèn hỏng,streetlight\n".encode() + b"r\xe1c,waste\n")
    message = refused(
        "train", "--input", str(source), "--text", "text", "--label", "label", "--output", str(tmp_path / "m")
    )
    assert "line 3 is not UTF-8" in message


def test_single_class(tmp_path: Path) -> None:
    source = write(tmp_path / "one.csv", "text,label\nđèn hỏng,streetlight\nđèn tắt,streetlight\n")
    assert "at least two labels" in refused(
        "train", "--input", str(source), "--text", "text", "--label", "label", "--output", str(tmp_path / "m")
    )


def test_only_empty_text(tmp_path: Path) -> None:
    source = write(tmp_path / "blank.csv", "text,label\n ,streetlight\n,waste\n")
    assert "every row has empty text (2 rows)" in refused(
        "train", "--input", str(source), "--text", "text", "--label", "label", "--output", str(tmp_path / "m")
    )


@pytest.mark.parametrize("precision", ["0", "1.5", "-0.2"])
def test_precision_outside_0_1(small_csv: Path, tmp_path: Path, precision: str) -> None:
    assert "--precision must be in (0, 1]" in refused(
        "train",
        "--input",
        str(small_csv),
        "--text",
        "text",
        "--label",
        "label",
        "--output",
        str(tmp_path / "m"),
        "--precision",
        precision,
    )


def test_unknown_labels_at_evaluate(model_dir: Path, tmp_path: Path) -> None:
    source = write(tmp_path / "eval.csv", "text,label\nđèn hỏng,streetlight\nmất điện cả khu,power_cut\n")
    message = refused(
        "evaluate", "--model", str(model_dir), "--input", str(source), "--text", "text", "--label", "label"
    )
    assert "labels the model does not know: power_cut" in message


def test_model_that_fails_its_hash_check(model_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["files"]["model.npz"] = "0" * 64
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    message = refused(
        "evaluate", "--model", str(model_dir), "--input", str(EVAL), "--text", "text", "--label", "label"
    )
    assert "does not match its manifest" in message


def test_bad_time_names_the_line(tmp_path: Path) -> None:
    source = write(
        tmp_path / "t.csv", "text,label,at\nđèn hỏng,streetlight,2025-01-01\nrác,waste,yesterday\n"
    )
    assert "line 3: 'yesterday'" in refused(
        "train",
        "--input",
        str(source),
        "--text",
        "text",
        "--label",
        "label",
        "--time",
        "at",
        "--output",
        str(tmp_path / "m"),
    )


# --- the registry -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_register_then_activate_prints_the_comparison(model_dir: Path, categories: Any) -> None:
    assert "registered (candidate)" in run("register", str(model_dir))
    assert "registered (candidate)" in run("register", str(model_dir))  # idempotent
    assert RoutingModel.objects.count() == 1
    out = run("activate", str(model_dir))
    assert "comparison on the candidate's" in out and "macro-F1" in out and "is now active" in out
    row = RoutingModel.objects.get()
    assert row.state == "active" and row.activated_by_label == "operator"
    assert AuditEntry.objects.filter(action="ai.model_activated", subject_id=str(row.pk)).exists()


@pytest.mark.django_db
def test_activate_refuses_a_damaged_model_and_unknown_labels(model_dir: Path, tmp_path: Path) -> None:
    message = refused("activate", str(model_dir))  # no categories exist
    assert "not active report categories" in message
    assert not RoutingModel.objects.filter(state="active").exists()
    (model_dir / "model.npz").write_bytes(b"PK broken")
    assert "does not match its manifest" in refused("register", str(model_dir))


@pytest.mark.django_db
def test_activate_by_a_user_without_ai_manage_is_refused(model_dir: Path, categories: Any) -> None:
    from civicore.agencies.tests.factories import make_officer

    officer = make_officer(roles=("caseworker",))
    refused("activate", str(model_dir), "--by", officer.user.email)
    refused("activate", str(model_dir), "--by", "nobody@example.test")
    assert not RoutingModel.objects.filter(state="active").exists()


@pytest.mark.django_db
def test_export_writes_corrections_and_confirmations(tmp_path: Path) -> None:
    from civicore.routing import services

    services.correction_record(
        text="Đèn tín hiệu hỏng",
        predicted="streetlight",
        label="traffic_signal",
        reason="đèn giao thông",
        officer=None,
        model_id=None,
    )
    services.confirmation_record(text="Rác chưa thu gom", label="waste", officer=None, model_id=None)
    assert TrainingExample.objects.count() == 2
    out = run("export", "--output", str(tmp_path / "rows.csv"))
    assert "2 training rows" in out
    rows = list(csv.DictReader((tmp_path / "rows.csv").open(encoding="utf-8")))
    assert [(r["text"], r["label"]) for r in rows] == [
        ("Đèn tín hiệu hỏng", "traffic_signal"),
        ("Rác chưa thu gom", "waste"),
    ]
    assert all(r["time"] for r in rows)


@pytest.mark.django_db
def test_demo_model_trains_and_activates_once(categories: Any, settings: Any) -> None:
    out = run("demo-model")
    assert "is active" in out
    row = RoutingModel.objects.get(state="active")
    assert row.manifest["training_data"]["rows"] == 2400
    assert "already active" in run("demo-model")
    assert RoutingModel.objects.count() == 1
