"""Routing model: training time, prediction speed, and quality beside a plain TF-IDF baseline.

Sections (each a function): training time on the Boston 311 file (City of Boston open data, 311
service requests opened January-September 2015; not shipped with Civicore, skipped when absent)
and on the shipped reports-demo.csv; predictions per second, one at a time and in batches of 256;
the Boston time split (train January-July, test August-September by `opened`, text = title and
type, label = department) at --precision 0.995; and the demo data against the hand-written
reports-dev.csv (used to choose the model) and reports-eval.csv (used only to report) at 90 %
precision. Beside each quality figure, a word TF-IDF + LogisticRegression
baseline trained in the same run and thresholded the same way. Last, filing reports over HTTP with
AI routing in the request (bench/report_filing.py: POST /open311/v2/requests.json beside GET
/healthz in the same run, on PostgreSQL; --no-filing skips it). Prints figures and medians, writes
bench/results/routing.json (and report_filing.json); asserts nothing.

    python bench/routing.py [--boston PATH] [--runs N] [--precision 0.995] [--no-filing]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from civicore.routing import ml  # noqa: E402
from civicore.routing.dataset import load_examples  # noqa: E402

RESULTS = REPO / "bench" / "results" / "routing.json"
DATA = REPO / "civicore" / "routing" / "data"
DEFAULT_BOSTON = REPO.parent / "shared" / "data" / "requests" / "boston311-2015-train.csv"


def _timed(fn: Any, runs: int) -> tuple[Any, list[float]]:
    result, times = None, []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, times


def _boston(path: Path) -> list[ml.Example] | None:
    if not path.is_file():
        print(f"Boston file not found at {path}: skipping the Boston sections (pass --boston PATH).")
        return None
    return load_examples(path, text=["title", "type"], label="department", time="opened").examples


# --- the baseline ------------------------------------------------------------------------------


class Baseline:
    """Word TF-IDF + LogisticRegression, thresholded like the routing model: the lowest
    probability keeping the precision target on the latest 20 % of its training rows."""

    def __init__(self, precision: float) -> None:
        self.precision = precision
        self.threshold = 1.0

    def _fit(self, rows: list[ml.Example]) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        pipe = make_pipeline(TfidfVectorizer(analyzer="word"), LogisticRegression(max_iter=1000))
        return pipe.fit([r.text for r in rows], [r.label for r in rows])

    def fit(self, rows: list[ml.Example]) -> Baseline:
        core, held = ml.split_holdout(rows, ml.HOLDOUT_SHARE, seed=1)
        pipe = self._fit(core)
        probs = pipe.predict_proba([r.text for r in held])
        labels = pipe.classes_[probs.argmax(axis=1)]
        chosen = ml.choose_threshold(
            probs.max(axis=1), [a == r.label for a, r in zip(labels, held, strict=True)], self.precision
        )
        self.threshold = chosen["threshold"]
        self.pipe = self._fit(rows)
        return self

    def metrics(self, rows: list[ml.Example]) -> dict[str, Any]:
        from sklearn.metrics import f1_score

        probs = self.pipe.predict_proba([r.text for r in rows])
        classes = self.pipe.classes_
        top = np.argsort(-probs, axis=1)[:, :3]
        truth = [r.label for r in rows]
        guessed = [classes[i[0]] for i in top]
        conf = probs.max(axis=1)
        auto = conf >= self.threshold
        correct = np.array([g == t for g, t in zip(guessed, truth, strict=True)])
        return {
            "rows": len(rows),
            "accuracy": float(correct.mean()),
            "macro_f1": float(
                f1_score(truth, guessed, labels=sorted(set(truth)), average="macro", zero_division=0)
            ),
            "top3_accuracy": float(np.mean([t in classes[i] for t, i in zip(truth, top, strict=True)])),
            "auto_share": float(auto.mean()),
            "auto_precision": float(correct[auto].mean()) if auto.any() else None,
            "threshold": self.threshold,
            "confidences": conf,
            "correct": correct,
        }


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in m.items() if k not in ("per_class", "confidences", "correct")}


def _line(name: str, m: dict[str, Any]) -> str:
    p = m.get("auto_precision")
    return (
        f"  {name:<22} accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
        f"top-3 {m['top3_accuracy']:.4f}  auto {m['auto_share']:.4f} at precision "
        f"{'-' if p is None else f'{p:.4f}'} (threshold {m['threshold']:.4f})"
    )


# --- sections ----------------------------------------------------------------------------------


def training_time(name: str, rows: list[ml.Example], runs: int) -> dict[str, Any]:
    _, times = _timed(lambda: ml.train(rows, precision=0.95), runs)
    median = statistics.median(times)
    print(
        f"training on {name}: {len(rows)} rows, median {median:.2f} s over {runs} runs "
        f"({', '.join(f'{t:.2f}' for t in times)})"
    )
    return {"rows": len(rows), "seconds": times, "median_seconds": median}


def prediction_speed(rows: list[ml.Example], runs: int) -> dict[str, Any]:
    model, _ = ml.train(rows, precision=0.95)
    texts = [r.text for r in rows]
    model.predict_one(texts[0])
    single = []
    for text in texts[:500]:
        start = time.perf_counter()
        model.predict_one(text)
        single.append(time.perf_counter() - start)
    batch_rates = []
    for _ in range(runs):
        start = time.perf_counter()
        n = 0
        for i in range(0, min(len(texts), 256 * 20), 256):
            n += len(model.predict(texts[i : i + 256]))
        batch_rates.append(n / (time.perf_counter() - start))
    out = {
        "single_median_ms": statistics.median(single) * 1000,
        "single_p95_ms": float(np.percentile(single, 95) * 1000),
        "single_per_second": 1 / statistics.median(single),
        "batch256_per_second": statistics.median(batch_rates),
    }
    print(
        f"predictions: single {out['single_median_ms']:.2f} ms median (p95 {out['single_p95_ms']:.2f} ms), "
        f"{out['single_per_second']:.0f}/s; batches of 256: {out['batch256_per_second']:.0f}/s"
    )
    return out


def boston_time_split(rows: list[ml.Example], precision: float) -> dict[str, Any]:
    train = [r for r in rows if r.time is not None and r.time.month <= 7]
    test = [r for r in rows if r.time is not None and r.time.month in (8, 9)]
    start = time.perf_counter()
    model, _ = ml.train(train, precision=precision)
    ours_seconds = time.perf_counter() - start
    ours = ml.metrics(model, test)
    start = time.perf_counter()
    base = Baseline(precision).fit(train)
    base_seconds = time.perf_counter() - start
    baseline = base.metrics(test)
    print(
        f"Boston time split: train {len(train)} (Jan-Jul), test {len(test)} (Aug-Sep), "
        f"precision target {precision}"
    )
    print(_line(f"routing ({ours_seconds:.1f} s)", ours))
    print(_line(f"tf-idf + LR ({base_seconds:.1f} s)", baseline))
    return {
        "train_rows": len(train),
        "test_rows": len(test),
        "precision_target": precision,
        "routing": {**_summary(ours), "training_seconds": ours_seconds},
        "baseline_tfidf_lr": {**_summary(baseline), "training_seconds": base_seconds},
    }


def demo_free_text(name: str, precision: float = 0.90) -> dict[str, Any]:
    demo = load_examples(DATA / "reports-demo.csv", text=["text"], label="label", time="time").examples
    evaluation = load_examples(DATA / name, text=["text"], label="label").examples
    model, _ = ml.train(demo, precision=precision)
    ours = ml.metrics(model, evaluation)
    probs = model.probabilities([r.text for r in evaluation])
    ours_conf = probs.max(axis=1)
    ours_correct = [model.labels[i] == r.label for i, r in zip(probs.argmax(axis=1), evaluation, strict=True)]
    base = Baseline(precision).fit(demo)
    baseline = base.metrics(evaluation)
    # the share that could be routed at 90 % precision had the threshold been chosen on this very file
    ours_oracle = ml.choose_threshold(ours_conf, ours_correct, precision)
    base_oracle = ml.choose_threshold(baseline["confidences"], baseline["correct"], precision)
    print(f"demo data -> hand-written {name} ({len(evaluation)} rows), precision target {precision}")
    print(_line("routing", ours))
    print(_line("tf-idf + LR", baseline))
    print(
        f"  share routable at {precision:.0%} precision (threshold chosen on the eval file itself): "
        f"routing {ours_oracle['coverage']:.4f}, tf-idf + LR {base_oracle['coverage']:.4f}"
    )
    return {
        "train_rows": len(demo),
        "eval_rows": len(evaluation),
        "precision_target": precision,
        "routing": {**_summary(ours), "share_at_target_on_eval": ours_oracle["coverage"]},
        "baseline_tfidf_lr": {**_summary(baseline), "share_at_target_on_eval": base_oracle["coverage"]},
    }


def filing() -> dict[str, Any]:
    """Reports filed over HTTP with the model in the request, beside /healthz (bench/report_filing.py)."""
    sys.path.insert(0, str(REPO / "bench"))
    import report_filing

    print("\n== Filing reports over HTTP, AI routing in the request ==")
    report = report_filing.run_filing(report_filing.parse_args([]))
    return report.get("median", {}) if isinstance(report, dict) else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boston", type=Path, default=DEFAULT_BOSTON)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--precision", type=float, default=0.995)
    parser.add_argument("--no-filing", dest="filing", action="store_false", help="skip the HTTP filing part")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    demo = load_examples(DATA / "reports-demo.csv", text=["text"], label="label", time="time").examples
    boston = _boston(args.boston)
    if boston is not None:
        results["training_boston"] = training_time("Boston 311 (2015)", boston, args.runs)
    results["training_demo"] = training_time("reports-demo.csv", demo, args.runs)
    results["prediction_speed"] = prediction_speed(boston or demo, args.runs)
    if boston is not None:
        results["boston_time_split"] = boston_time_split(boston, args.precision)
    # the dev file chose the model; the eval file only reports on the choice
    results["demo_free_text_dev"] = demo_free_text("reports-dev.csv")
    results["demo_free_text"] = demo_free_text("reports-eval.csv")
    if args.filing:
        results["filing"] = filing()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
