from __future__ import annotations

import tempfile
from pathlib import Path

from civicore.routing import ml, services
from civicore.routing.models import RoutingModel

_PHRASES = {
    "streetlight": ["đèn đường hỏng", "den duong tat", "street light out", "đèn chiếu sáng không sáng"],
    "waste": ["rác chưa thu gom", "rac boc mui", "rubbish not collected", "bãi rác tự phát"],
}


def make_model(version: str = "", labels: tuple[str, ...] = ("streetlight", "waste")) -> RoutingModel:
    """A small registered candidate model, trained in well under a second."""
    rows = [
        ml.Example(f"{text} {i}", label) for label in labels for i in range(5) for text in _PHRASES[label]
    ]
    model, held = ml.train(rows, precision=0.9)
    if version:
        model.manifest["model_version"] = version
    with tempfile.TemporaryDirectory() as tmp:
        ml.save(model, held, Path(tmp))
        return services.model_register(files=ml.read_directory(Path(tmp)))
