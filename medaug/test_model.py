"""What marks a model as a medaug test model (the tiny model built by jobs/tiny_model.py): its samples
get the review page's "not medical" banner and are pulled last. Core, because the builder, the queue and
the page all need it."""

from __future__ import annotations

# A model id (or the folder it is loaded from) containing this is a medaug test model.
TEST_MODEL_MARK = "medaug-test"
