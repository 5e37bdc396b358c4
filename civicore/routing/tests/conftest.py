from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest

from civicore.routing import ml, selectors
from civicore.routing.dataset import load_examples

DATA = Path(__file__).resolve().parents[1] / "data"
DEMO = DATA / "reports-demo.csv"
EVAL = DATA / "reports-eval.csv"
CODES = [
    "animals",
    "flooding",
    "illegal_parking",
    "noise",
    "posters",
    "road_damage",
    "sidewalk",
    "streetlight",
    "traffic_signal",
    "trees",
    "waste",
    "water_leak",
]


def small_demo(path: Path, per_label_language: int = 30) -> Path:
    """A slice of the demo data (fast to train on), keeping its columns."""
    with DEMO.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    kept, seen = [], {}
    for row in rows:
        key = (row["label"], row["language"])
        if seen.get(key, 0) < per_label_language:
            seen[key] = seen.get(key, 0) + 1
            kept.append(row)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label", "language", "time"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    return path


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: Any) -> Path:
    return small_demo(tmp_path_factory.mktemp("data") / "small.csv")


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: Any, small_csv: Path) -> Path:
    loaded = load_examples(small_csv, text=["text"], label="label", time="time")
    model, held = ml.train(
        loaded.examples,
        precision=0.9,
        source={"sha256": loaded.sha256, "name": "small.csv", "text_columns": ["text"]},
    )
    directory = tmp_path_factory.mktemp("model") / "m1"
    ml.save(model, held, directory)
    return directory


@pytest.fixture
def model_dir(trained_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the trained model directory, safe to damage."""
    target = tmp_path / "model"
    shutil.copytree(trained_dir, target)
    return target


@pytest.fixture
def categories(db: Any) -> list[Any]:
    from civicore.reports.tests.factories import make_category

    return [make_category(code) for code in CODES]


@pytest.fixture(autouse=True)
def _fresh_model_cache() -> Any:
    selectors.forget_cache()
    yield
    selectors.forget_cache()
