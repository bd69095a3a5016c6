"""De-identification: Chinese PII recognizers feeding presidio-anonymizer operators.

Public API: `deidentify_table` (the batch stage), `deidentify_text` / `deidentify_texts`
(plain text, used by `medaug deid`), `DeidConfig`, `Deidentifier`, `reidentify_text`.
"""

from curation.deid.config import DeidConfig, DeidConfigError, OperatorSpec
from curation.deid.engine import Deidentifier, reidentify_text
from curation.deid.recognizers import ENTITIES, Recognizers
from curation.deid.stage import deidentify_table, deidentify_text, deidentify_texts

__all__ = [
    "ENTITIES",
    "DeidConfig",
    "DeidConfigError",
    "Deidentifier",
    "OperatorSpec",
    "Recognizers",
    "deidentify_table",
    "deidentify_text",
    "deidentify_texts",
    "reidentify_text",
]
