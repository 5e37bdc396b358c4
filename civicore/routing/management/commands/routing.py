"""`civicore routing ...`: train, evaluate and run routing models, and register and activate them.

Every bad input (missing file or column, empty or non-UTF-8 file, one class, unknown labels, a
model that fails its hash check, a precision outside (0, 1]) ends with exit code 2 and one line
saying what is wrong.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from civicore.core.errors import ApplicationError
from civicore.routing import ml
from civicore.routing.dataset import load_examples

DEMO_DATA = Path(__file__).resolve().parents[2] / "data" / "reports-demo.csv"


def _fail(message: str) -> CommandError:
    return CommandError(message.replace("\n", " "), returncode=2)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


class Command(BaseCommand):
    help = "Routing models: train, evaluate, predict, register, activate, export, demo-model."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="action")
        train = sub.add_parser("train", help="Train a model from a CSV file into a model directory.")
        train.add_argument("--input", required=True)
        train.add_argument("--text", action="append", required=True, help="text column (repeatable)")
        train.add_argument("--label", required=True)
        train.add_argument("--time", help="time column: the latest 20%% are held out")
        train.add_argument("--output", required=True)
        train.add_argument("--precision", type=float, default=0.95, help="target precision of auto-routing")

        evaluate = sub.add_parser("evaluate", help="Measure a model on labelled rows.")
        evaluate.add_argument("--model", required=True)
        evaluate.add_argument("--input", required=True)
        evaluate.add_argument("--text", action="append", required=True)
        evaluate.add_argument("--label", required=True)

        predict = sub.add_parser("predict", help="Predict a label for each row.")
        predict.add_argument("--model", required=True)
        predict.add_argument("--input", required=True)
        predict.add_argument("--id", required=True, dest="id_column")
        predict.add_argument("--text", action="append", required=True)
        predict.add_argument("--output", required=True)

        register = sub.add_parser("register", help="Register a model directory as a candidate.")
        register.add_argument("directory")
        activate = sub.add_parser("activate", help="Register and activate a model directory.")
        activate.add_argument("directory")
        activate.add_argument("--by", help="e-mail of the officer (ai.manage) who decided it")

        export = sub.add_parser(
            "export", help="Write kept corrections and confirmed routings as training rows."
        )
        export.add_argument("--output", required=True)
        sub.add_parser("demo-model", help="Train and activate the demo model if no model is active.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        try:
            getattr(self, f"_{action}")(options)
        except ml.RoutingError as exc:
            raise _fail(str(exc)) from exc
        except ApplicationError as exc:
            raise _fail(exc.message) from exc

    # --- files only --------------------------------------------------------------------------

    def _train(self, o: dict[str, Any]) -> None:
        if not 0 < o["precision"] <= 1:
            raise _fail(f"--precision must be in (0, 1], got {o['precision']}")
        loaded = load_examples(o["input"], text=o["text"], label=o["label"], time=o["time"])
        model, held = ml.train(
            loaded.examples,
            precision=o["precision"],
            source={
                "sha256": loaded.sha256,
                "name": Path(o["input"]).name,
                "skipped_empty": loaded.skipped_empty,
                "text_columns": o["text"],
                "label_column": o["label"],
                "time_column": o["time"],
            },
        )
        manifest = ml.save(model, held, Path(o["output"]))
        v = manifest["validation"]
        held_m = v["metrics"]
        if loaded.skipped_empty:
            self.stdout.write(f"skipped {loaded.skipped_empty} rows with empty text")
        self.stdout.write(
            f"model {manifest['model_version']}: {len(loaded.examples)} rows, "
            f"{len(manifest['labels'])} labels, {manifest['training_seconds']} s\n"
            f"held out {held_m.get('rows', 0)} rows ({v['split']}): accuracy {_pct(held_m.get('accuracy'))}, "
            f"macro-F1 {_pct(held_m.get('macro_f1'))}\n"
            f"threshold {manifest['threshold']:.4f}: auto-routed {_pct(v['coverage'])} at precision "
            f"{_pct(v['precision'])} (target {_pct(o['precision'])})\n"
            f"written to {o['output']}"
        )

    def _evaluate(self, o: dict[str, Any]) -> None:
        model = ml.load(Path(o["model"]))
        loaded = load_examples(o["input"], text=o["text"], label=o["label"])
        unknown = sorted({e.label for e in loaded.examples} - set(model.labels))
        if unknown:
            raise _fail(
                f"labels the model does not know: {', '.join(unknown)} (it knows {', '.join(model.labels)})"
            )
        m = ml.metrics(model, loaded.examples)
        if loaded.skipped_empty:
            self.stdout.write(f"skipped {loaded.skipped_empty} rows with empty text")
        self.stdout.write(
            f"rows {m['rows']}\naccuracy {m['accuracy']:.4f}\nmacro_f1 {m['macro_f1']:.4f}\n"
            f"top3_accuracy {m['top3_accuracy']:.4f}\nauto_routed {m['auto_share']:.4f}\n"
            f"auto_precision {'-' if m['auto_precision'] is None else format(m['auto_precision'], '.4f')}\n"
            f"threshold {model.threshold:.4f}"
        )

    def _predict(self, o: dict[str, Any]) -> None:
        model = ml.load(Path(o["model"]))
        loaded = load_examples(o["input"], text=o["text"], id_column=o["id_column"])
        predictions = model.predict([e.text for e in loaded.examples])
        with open(o["output"], "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["id", "label", "confidence", "top3", "routed"])
            for row_id, p in zip(loaded.ids, predictions, strict=True):
                top3 = "|".join(f"{label}:{conf:.4f}" for label, conf in p.top3)
                writer.writerow(
                    [row_id, p.label, f"{p.confidence:.4f}", top3, "auto" if p.auto else "triage"]
                )
        auto = sum(p.auto for p in predictions)
        skipped = f", skipped {loaded.skipped_empty} rows with empty text" if loaded.skipped_empty else ""
        self.stdout.write(
            f"{len(predictions)} predictions ({auto} auto, {len(predictions) - auto} triage)"
            f"{skipped} -> {o['output']}"
        )

    # --- the registry ------------------------------------------------------------------------

    def _register_directory(self, directory: str) -> Any:
        from civicore.routing import services

        return services.model_register(files=ml.read_directory(Path(directory)))

    def _register(self, o: dict[str, Any]) -> None:
        row = self._register_directory(o["directory"])
        self.stdout.write(f"model {row.version} registered ({row.state})")

    def _activate(self, o: dict[str, Any]) -> None:
        from civicore.identity.models import User
        from civicore.routing import selectors, services

        user = None
        if o.get("by"):
            user = User.objects.filter(email__iexact=o["by"]).first()
            if user is None:
                raise _fail(f"no user with the e-mail {o['by']}")
        row = self._register_directory(o["directory"])
        self._print_comparison(selectors.comparison(row))
        row = services.model_activate(row, user, operator=user is None)
        self.stdout.write(self.style.SUCCESS(f"model {row.version} is now active"))

    def _print_comparison(self, c: dict[str, Any]) -> None:
        cand, active = c["candidate"], c["active"]
        self.stdout.write(f"comparison on the candidate's {c['rows']} held-out rows:")
        self.stdout.write(f"  {'':<16}{'candidate':>12}{'active':>12}")
        for key, name in (
            ("accuracy", "accuracy"),
            ("macro_f1", "macro-F1"),
            ("auto_share", "auto-routed"),
            ("auto_precision", "precision"),
        ):
            self.stdout.write(
                f"  {name:<16}{_pct(cand.get(key)):>12}{_pct(active.get(key)) if active else '(none)':>12}"
            )

    def _export(self, o: dict[str, Any]) -> None:
        from civicore.routing import services

        text = services.training_rows_csv()
        Path(o["output"]).write_text(text, encoding="utf-8")
        self.stdout.write(f"{text.count(chr(10)) - 1} training rows -> {o['output']}")

    def _demo_model(self, o: dict[str, Any]) -> None:
        from civicore.routing import selectors, services
        from civicore.routing.models import RoutingModel

        if selectors.current_active_row() is not None:
            self.stdout.write("a routing model is already active; nothing to do")
            return
        loaded = load_examples(DEMO_DATA, text=["text"], label="label", time="time")
        row = (
            RoutingModel.objects.filter(manifest__training_data__input_sha256=loaded.sha256)
            .order_by("-created_at")
            .first()
        )
        if row is None:
            model, held = ml.train(
                loaded.examples,
                precision=0.95,
                source={
                    "sha256": loaded.sha256,
                    "name": DEMO_DATA.name,
                    "text_columns": ["text"],
                    "label_column": "label",
                    "time_column": "time",
                },
            )
            with tempfile.TemporaryDirectory() as tmp:
                ml.save(model, held, Path(tmp))
                row = services.model_register(files=ml.read_directory(Path(tmp)))
        row = services.model_activate(row, None, operator=True)
        self.stdout.write(self.style.SUCCESS(f"demo routing model {row.version} is active"))
