"""The routing classifier, without Django: train, evaluate, predict, save and load.

Text in any script is normalised (NFC, casefold, digits folded) and hashed into word 1-2-grams
(with and without Vietnamese diacritics) and character 2-5-grams, so no vocabulary file or download
is needed; counts are dampened (1 + log) and weighted by an inverse document frequency stored as a
plain array beside the weights. A linear model (SGD, logistic loss) scores the labels; a temperature
fitted on a calibration slice turns scores into probabilities; the auto-routing threshold is the lowest
confidence at which the held-out slice keeps the target precision. The model directory holds
`manifest.json`, `model.npz` (numpy arrays, read without pickle) and `heldout.csv`; loading checks
the sha256 of every file the manifest lists and refuses a mismatch.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import random
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import f1_score, precision_recall_fscore_support

FORMAT_VERSION = 2  # 2: sublinear TF-IDF features, idf arrays in model.npz
MANIFEST = "manifest.json"
WEIGHTS = "model.npz"
HELDOUT = "heldout.csv"
WORD_FEATURES = 2**18
CHAR_FEATURES = 2**18
HOLDOUT_SHARE = 0.2
CALIBRATION_SHARE = 0.15
MAX_CONFIDENCE = 1.0 - 1e-6  # so that an unreachable threshold of 1.0 routes nothing
MIN_ROWS_PER_LABEL_WARNING = 20
# Below this share of familiar feature weight a text is never routed automatically: the model has
# not seen its words or script, so its confidence means nothing (an officer routes it).
FAMILIAR_SHARE = 0.3
SETTINGS: dict[str, Any] = {"alpha": 5e-6, "epochs": 15, "loss": "log_loss", "seed": 20260301}


class RoutingError(ValueError):
    """Input or model the routing code cannot use; the message says what and where."""


class ModelIntegrityError(RoutingError):
    """A model file does not match the sha256 its manifest records."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str
    time: dt.datetime | None = None


# --- text ------------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d")
_WORDS = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    """NFC, casefold, every digit as 0 (house numbers and dates carry no category)."""
    return _DIGITS.sub("0", unicodedata.normalize("NFC", text).casefold())


def fold(text: str) -> str:
    """Without diacritics, as people type on phones: "đèn đường" -> "den duong"."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _word_features(text: str) -> list[str]:
    norm = normalise(text)
    features: list[str] = []
    for prefix, words in (("w", _WORDS.findall(norm)), ("f", _WORDS.findall(fold(norm)))):
        features.extend(f"{prefix}:{w}" for w in words)
        features.extend(f"{prefix}:{a} {b}" for a, b in zip(words, words[1:], strict=False))
    return features


def _char_text(text: str) -> str:
    return fold(normalise(text))


_WORD_VECTORIZER = HashingVectorizer(
    analyzer=_word_features, n_features=WORD_FEATURES, alternate_sign=False, norm=None
)
_CHAR_VECTORIZER = HashingVectorizer(
    analyzer="char_wb",
    ngram_range=(2, 5),
    preprocessor=_char_text,
    lowercase=False,
    n_features=CHAR_FEATURES,
    alternate_sign=False,
    norm=None,
)


def counts(texts: Sequence[str]) -> sp.csr_matrix:
    """Hashed word and character n-gram counts, side by side."""
    words = _WORD_VECTORIZER.transform(texts)
    chars = _CHAR_VECTORIZER.transform(texts)
    return sp.hstack([words, chars], format="csr", dtype=np.float64)


def fit_idf(x: sp.csr_matrix) -> np.ndarray:
    """Smoothed inverse document frequency of each hashed feature, ln((1 + n) / (1 + df)) + 1."""
    df = np.bincount(sp.csr_matrix(x).indices, minlength=x.shape[1])
    return (np.log((1 + x.shape[0]) / (1 + df)) + 1).astype(np.float32)


def features(texts: Sequence[str], idf: np.ndarray | None = None) -> sp.csr_matrix:
    """Sublinear counts (1 + log), times `idf` (ones when None), each block (words, characters)
    l2-normalised. Works on the sparse arrays directly: a routing request featurises one text, and
    building diagonal matrices over every hashed feature would cost more than the text itself."""
    x = counts(texts)
    x.data = 1 + np.log(x.data)
    if idf is not None:
        x.data *= idf[x.indices]
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    in_chars = x.indices >= WORD_FEATURES
    squares = x.data * x.data
    norms = []
    for mask in (~in_chars, in_chars):
        norm = np.sqrt(np.bincount(rows[mask], weights=squares[mask], minlength=x.shape[0]))
        norm[norm == 0] = 1.0
        norms.append(norm)
    x.data /= np.where(in_chars, norms[1][rows], norms[0][rows])
    return x.astype(np.float32)


# --- the model -------------------------------------------------------------------------------


@dataclass
class Prediction:
    label: str
    confidence: float
    top3: list[tuple[str, float]]
    auto: bool
    familiar: float = 1.0  # share of the text's features the model learned anything about


@dataclass
class Model:
    labels: list[str]
    coef: np.ndarray  # (labels, features), float32
    intercept: np.ndarray  # (labels,)
    temperature: float
    threshold: float
    idf: np.ndarray | None = None  # (features,), float32
    manifest: dict[str, Any] = field(default_factory=dict)
    _by_feature: np.ndarray | None = field(default=None, repr=False)
    _known: np.ndarray | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return str(self.manifest.get("model_version", ""))

    def _scores(self, x: sp.csr_matrix) -> np.ndarray:
        if self._by_feature is None:  # (features, labels), C order: a sparse row times it reads few rows
            self._by_feature = np.ascontiguousarray(self.coef.T)
        return np.asarray(x @ self._by_feature) + self.intercept

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self._scores(features(texts, self.idf))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        return _softmax(self.scores(texts), self.temperature)

    def familiarity(self, x: sp.csr_matrix) -> np.ndarray:
        """Per text, the share of its feature weight on features seen in training (any non-zero
        coefficient). Text in a script or vocabulary the model never saw scores near the hashing
        collision rate, however confident the softmax looks."""
        if self._known is None:
            self._known = np.any(self.coef != 0, axis=0).astype(np.float32)
        magnitude = abs(x)
        total = np.asarray(magnitude.sum(axis=1)).ravel()
        known = np.asarray(magnitude @ self._known).ravel()
        return np.divide(known, total, out=np.zeros_like(total, dtype=np.float64), where=total > 0)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        x = features(texts, self.idf)
        probs = _softmax(self._scores(x), self.temperature)
        familiar = self.familiarity(x)
        order = np.argsort(-probs, axis=1)[:, :3]
        out = []
        for row, top, share in zip(probs, order, familiar, strict=True):
            top3 = [(self.labels[i], min(float(row[i]), MAX_CONFIDENCE)) for i in top]
            label, confidence = top3[0]
            auto = confidence >= self.threshold and share >= FAMILIAR_SHARE
            out.append(Prediction(label, confidence, top3, auto, float(share)))
        return out

    def predict_one(self, text: str) -> Prediction:
        return self.predict([text])[0]


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit_linear(texts: Sequence[str], y: Sequence[str], labels: list[str], settings: dict[str, Any]) -> Model:
    idf = fit_idf(counts(texts))
    x = features(texts, idf)
    clf = SGDClassifier(
        loss=settings["loss"],
        alpha=settings["alpha"],
        max_iter=settings["epochs"],
        tol=None,
        random_state=settings["seed"],
        n_jobs=2,
    )
    clf.fit(x, list(y))
    classes = [str(c) for c in clf.classes_]
    coef = np.zeros((len(labels), x.shape[1]), dtype=np.float32)
    intercept = np.zeros(len(labels), dtype=np.float64)
    if len(classes) == 2:  # sklearn keeps one score for two classes
        coef[labels.index(classes[1])] = clf.coef_[0]
        coef[labels.index(classes[0])] = -clf.coef_[0]
        intercept[labels.index(classes[1])] = clf.intercept_[0]
        intercept[labels.index(classes[0])] = -clf.intercept_[0]
    else:
        for i, c in enumerate(classes):
            coef[labels.index(c)] = clf.coef_[i]
            intercept[labels.index(c)] = clf.intercept_[i]
        # a label missing from this slice can never win
        for missing in set(labels) - set(classes):
            intercept[labels.index(missing)] = -1e3
    return Model(labels=labels, coef=coef, intercept=intercept, temperature=1.0, threshold=1.0, idf=idf)


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of the true labels."""

    def nll(log_t: float) -> float:
        p = _softmax(scores, float(np.exp(log_t)))
        return float(-np.log(np.clip(p[np.arange(len(truth)), truth], 1e-12, None)).mean())

    result = minimize_scalar(nll, bounds=(-6.0, 4.0), method="bounded")
    return float(np.exp(result.x))


def choose_threshold(confidences: Sequence[float], correct: Sequence[bool], target: float) -> dict[str, Any]:
    """The lowest confidence at which the predictions at or above it keep `target` precision.
    Returns threshold, the precision reached and the share routed (coverage); when no
    threshold reaches the target, 1.0 (route nothing) with precision None."""
    conf = np.asarray(confidences, dtype=float)
    ok = np.asarray(correct, dtype=bool)
    n = len(conf)
    best: dict[str, Any] = {"threshold": 1.0, "precision": None, "coverage": 0.0}
    if n == 0:
        return best
    order = np.argsort(-conf, kind="stable")
    conf, ok = conf[order], ok[order]
    hits = np.cumsum(ok)
    for i in range(n):
        if i + 1 < n and conf[i + 1] == conf[i]:
            continue  # ties are routed together
        precision = hits[i] / (i + 1)
        if precision >= target:
            best = {"threshold": float(conf[i]), "precision": float(precision), "coverage": (i + 1) / n}
    return best


# --- metrics ---------------------------------------------------------------------------------


def metrics(model: Model, rows: Sequence[Example]) -> dict[str, Any]:
    """Accuracy, macro-F1, top-3 accuracy, the share routed automatically and its precision, and
    precision/recall/F1 per class, of `model` on `rows`."""
    if not rows:
        return {"rows": 0}
    preds = model.predict([r.text for r in rows])
    truth = [r.label for r in rows]
    guessed = [p.label for p in preds]
    auto = [p.auto for p in preds]
    correct = [g == t for g, t in zip(guessed, truth, strict=True)]
    routed = sum(auto)
    labels = sorted(set(truth) | set(guessed))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, guessed, labels=labels, zero_division=0
    )
    return {
        "rows": len(rows),
        "accuracy": float(np.mean(correct)),
        "macro_f1": float(
            f1_score(truth, guessed, labels=sorted(set(truth)), average="macro", zero_division=0)
        ),
        "top3_accuracy": float(
            np.mean([t in [label for label, _ in p.top3] for t, p in zip(truth, preds, strict=True)])
        ),
        "auto_share": routed / len(rows),
        "auto_precision": (sum(c for c, a in zip(correct, auto, strict=True) if a) / routed)
        if routed
        else None,
        "threshold": model.threshold,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
    }


# --- training --------------------------------------------------------------------------------


def split_holdout(rows: Sequence[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """(train, held out): the latest `share` by time when every row has one, else a stratified
    random `share` (each label keeps at least one training row)."""
    if rows and all(r.time is not None for r in rows):
        ordered = sorted(rows, key=lambda r: r.time)  # type: ignore[arg-type, return-value]
        cut = len(ordered) - max(1, round(len(ordered) * share))
        return ordered[:cut], ordered[cut:]
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not a secret
    by_label: dict[str, list[Example]] = {}
    for r in rows:
        by_label.setdefault(r.label, []).append(r)
    train, held = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        k = min(len(group) - 1, round(len(group) * share))
        held.extend(group[:k])
        train.extend(group[k:])
    return train, held


def _stratified(rows: Sequence[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    return split_holdout([Example(r.text, r.label) for r in rows], share, seed)


def train(
    rows: Sequence[Example],
    *,
    precision: float = 0.95,
    source: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> tuple[Model, list[Example]]:
    """Fit, calibrate and choose the threshold on a held-out slice, then refit on all rows with
    the same settings. Returns the model (its manifest filled in) and the held-out rows."""
    if not 0 < precision <= 1:
        raise RoutingError(f"--precision must be in (0, 1], got {precision}")
    settings = {**SETTINGS, **(settings or {})}
    rows = [r for r in rows if r.text.strip()]
    counts = Counter(r.label for r in rows)
    if len(counts) < 2:
        raise RoutingError(f"Training needs at least two labels; the data has {len(counts)}.")
    labels = sorted(counts)
    started = time.perf_counter()

    fit_rows, held = split_holdout(rows, HOLDOUT_SHARE, settings["seed"])
    core, calib = _stratified(fit_rows, CALIBRATION_SHARE, settings["seed"] + 1)
    index = {label: i for i, label in enumerate(labels)}
    validation_model = _fit_linear([r.text for r in core], [r.label for r in core], labels, settings)
    if calib:
        validation_model.temperature = fit_temperature(
            validation_model.scores([r.text for r in calib]), np.array([index[r.label] for r in calib])
        )
    validation_model.threshold = 0.0
    held_preds = validation_model.predict([r.text for r in held]) if held else []
    chosen = choose_threshold(
        [p.confidence for p in held_preds],
        [p.label == r.label for p, r in zip(held_preds, held, strict=True)],
        precision,
    )
    validation_model.threshold = chosen["threshold"]
    held_metrics = metrics(validation_model, held)

    final = _fit_linear([r.text for r in rows], [r.label for r in rows], labels, settings)
    final.temperature = validation_model.temperature
    final.threshold = chosen["threshold"]
    seconds = time.perf_counter() - started

    times = [r.time for r in rows if r.time is not None]
    created = now or dt.datetime.now(dt.UTC)
    source = source or {}
    final.manifest = {
        "format_version": FORMAT_VERSION,
        "model_version": "",  # set by save(), from the weights' hash
        "created_at": created.isoformat(timespec="seconds"),
        "labels": labels,
        "threshold": chosen["threshold"],
        "precision_target": precision,
        "validation": {
            "precision": chosen["precision"],
            "coverage": chosen["coverage"],
            "split": "latest 20% by time" if times and len(times) == len(rows) else "stratified random 20%",
            "calibration": {"method": "temperature", "temperature": validation_model.temperature},
            "metrics": held_metrics,
        },
        "training_data": {
            "rows": len(rows),
            "skipped_empty": int(source.get("skipped_empty", 0)),
            "label_counts": dict(sorted(counts.items())),
            "time_range": [min(times).isoformat(), max(times).isoformat()] if times else None,
            "input_sha256": source.get("sha256", ""),
            "input_name": source.get("name", ""),
            "text_columns": list(source.get("text_columns", [])),
            "label_column": source.get("label_column", ""),
            "time_column": source.get("time_column") or None,
        },
        "features": {
            "normalisation": "NFC, casefold, digits as 0",
            "word_ngrams": [1, 2],
            "word_features": WORD_FEATURES,
            "char_ngrams": [2, 5],
            "char_features": CHAR_FEATURES,
            "diacritics_folded": True,
            "weighting": "sublinear tf (1 + log), smoothed idf of the training rows, l2 per block",
        },
        "classifier": {"kind": "SGDClassifier", **settings},
        "training_seconds": round(seconds, 2),
        "known_limits": _known_limits(counts, held_metrics, chosen, precision),
        "files": {},
    }
    return final, held


def _known_limits(
    counts: Counter[str], held: dict[str, Any], chosen: dict[str, Any], target: float
) -> list[dict[str, Any]]:
    limits: list[dict[str, Any]] = [
        {
            "code": "training_data_only",
            "text": "Predicts only the labels it was trained on; reports about anything else get the closest "
            "label, usually with low confidence (triage).",
        },
        {
            "code": "refit_calibration",
            "text": "Calibration and threshold were measured on the held-out slice before the final refit "
            "on all rows; the refit model is assumed to be at least as good.",
        },
    ]
    few = sorted(label for label, n in counts.items() if n < MIN_ROWS_PER_LABEL_WARNING)
    if few:
        limits.append(
            {
                "code": "few_examples",
                "labels": few,
                "text": f"Fewer than 20 training rows for: {', '.join(few)}.",
            }
        )
    weak = sorted(label for label, m in held.get("per_class", {}).items() if m["support"] and m["f1"] < 0.5)
    if weak:
        limits.append(
            {
                "code": "weak_classes",
                "labels": weak,
                "text": f"F1 below 0.5 on held-out rows for: {', '.join(weak)}.",
            }
        )
    if chosen["precision"] is None:
        limits.append(
            {
                "code": "no_auto_routing",
                "text": f"No confidence reached {target:.1%} precision on the held-out rows: "
                "every report goes to triage.",
            }
        )
    return limits


# --- files -----------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def weights_bytes(model: Model) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        coef=model.coef.astype(np.float32),
        intercept=model.intercept.astype(np.float64),
        temperature=np.array([model.temperature], dtype=np.float64),
        threshold=np.array([model.threshold], dtype=np.float64),
        idf=(model.idf if model.idf is not None else np.ones(model.coef.shape[1])).astype(np.float32),
    )
    return buffer.getvalue()


def heldout_text(rows: Iterable[Example]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["text", "label", "time"])
    for r in rows:
        writer.writerow([r.text, r.label, r.time.isoformat() if r.time else ""])
    return buffer.getvalue()


def parse_heldout(text: str) -> list[Example]:
    reader = csv.DictReader(io.StringIO(text))
    return [
        Example(
            row["text"], row["label"], dt.datetime.fromisoformat(row["time"]) if row.get("time") else None
        )
        for row in reader
    ]


def package(model: Model, held: Sequence[Example]) -> dict[str, bytes]:
    """The model directory's files: weights and held-out rows, then the manifest naming their sha256."""
    weights = weights_bytes(model)
    heldout = heldout_text(held).encode()
    manifest = dict(model.manifest)
    manifest["files"] = {WEIGHTS: sha256_bytes(weights), HELDOUT: sha256_bytes(heldout)}
    if not manifest.get("model_version"):
        created = dt.datetime.fromisoformat(manifest["created_at"])
        manifest["model_version"] = f"{created:%Y%m%d-%H%M%S}-{manifest['files'][WEIGHTS][:8]}"
    model.manifest = manifest
    return {
        MANIFEST: json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True).encode(),
        WEIGHTS: weights,
        HELDOUT: heldout,
    }


def save(model: Model, held: Sequence[Example], directory: Path) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    files = package(model, held)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return model.manifest


def read_directory(directory: Path) -> dict[str, bytes]:
    """The directory's files, after checking each against the manifest's sha256."""
    path = Path(directory)
    if not (path / MANIFEST).is_file():
        raise RoutingError(f"{path} is not a model directory (no {MANIFEST}).")
    files = {MANIFEST: (path / MANIFEST).read_bytes()}
    manifest = parse_manifest(files[MANIFEST])
    for name in manifest["files"]:
        if not (path / name).is_file():
            raise ModelIntegrityError(f"{path / name} is missing; the manifest lists it.")
        files[name] = (path / name).read_bytes()
    verify(files)
    return files


def parse_manifest(data: bytes) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RoutingError(f"The manifest is not valid JSON: {exc}") from exc
    if isinstance(manifest, dict) and manifest.get("format_version") == 1:
        raise RoutingError(
            "This model was saved in format 1 (features without idf weighting), which this version "
            f"no longer reads; train a new model (format {FORMAT_VERSION}) from the same data."
        )
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise RoutingError(f"Unknown model format (expected format_version {FORMAT_VERSION}).")
    if not isinstance(manifest.get("files"), dict) or WEIGHTS not in manifest["files"]:
        raise RoutingError("The manifest lists no model.npz.")
    return manifest


def verify(files: dict[str, bytes]) -> dict[str, Any]:
    """Refuse any file whose sha256 differs from the manifest's."""
    manifest = parse_manifest(files[MANIFEST])
    for name, expected in manifest["files"].items():
        if name not in files:
            continue  # held-out rows are kept apart (encrypted) by the registry
        actual = sha256_bytes(files[name])
        if actual != expected:
            raise ModelIntegrityError(
                f"{name} does not match its manifest (sha256 {actual[:12]}..., expected {expected[:12]}...): "
                "the model was altered or damaged; refusing to load it."
            )
    return manifest


def load_files(files: dict[str, bytes]) -> Model:
    manifest = verify(files)
    try:
        with np.load(io.BytesIO(files[WEIGHTS]), allow_pickle=False) as arrays:
            coef = arrays["coef"]
            intercept = arrays["intercept"]
            temperature = float(arrays["temperature"][0])
            threshold = float(arrays["threshold"][0])
            idf = arrays["idf"]
    except (ValueError, KeyError, OSError) as exc:
        raise RoutingError(f"model.npz cannot be read: {exc}") from exc
    labels = [str(label) for label in manifest["labels"]]
    n_features = WORD_FEATURES + CHAR_FEATURES
    if (
        coef.shape != (len(labels), n_features)
        or intercept.shape != (len(labels),)
        or idf.shape != (n_features,)
    ):
        raise RoutingError("model.npz does not match the manifest's labels or this version's features.")
    return Model(labels, coef, intercept, temperature, threshold, idf.astype(np.float32), manifest)


def load(directory: Path) -> Model:
    return load_files(read_directory(directory))


def heldout_rows(directory: Path) -> list[Example]:
    files = read_directory(directory)
    return parse_heldout(files[HELDOUT].decode()) if HELDOUT in files else []
