"""What marks a model as a medaug test model (the tiny model built by jobs/tiny_model.py): its samples
get the review page's "not medical" banner and are pulled last. Core, because the builder, the queue and
the page all need it."""

from __future__ import annotations

import json
from pathlib import Path

# A model id (or the folder it is loaded from) containing this is a medaug test model.
TEST_MODEL_MARK = "medaug-test"


def is_test_model_folder(path: str | Path) -> bool:
    """Whether a local model folder is a medaug test model (its config.json says `medaug_test_model`)."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and bool(cfg.get("medaug_test_model"))
