"""De-identification settings: which entities, which presidio operator for each, and where secrets come from.

Secrets (hash salt, encryption key) may be given inline or, better, by the name
of an environment variable, so a config file can be committed without them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from curation.deid.recognizers import ENTITIES

PLACEHOLDERS = {
    "PERSON": "姓名",
    "ID_CARD": "身份证号",
    "PHONE": "电话",
    "EMAIL": "邮箱",
    "MEDICAL_RECORD": "病案号",
    "HOSPITAL": "医院",
    "DEPARTMENT": "科室",
    "ADDRESS": "地址",
    "DATE": "日期",
    "AGE": "年龄",
}

OperatorName = Literal["replace", "mask", "hash", "encrypt", "shift", "generalize", "keep"]
# shift/generalize rewrite a value instead of hiding it; they only make sense for these types.
_VALUE_OPERATORS = {"shift": {"DATE"}, "generalize": {"DATE", "AGE"}}
_DEFAULT_OPERATORS = {"DATE": "shift", "AGE": "generalize"}
DEID_FIELDS = ("instruction", "input", "output", "reference_output")


class DeidConfigError(ValueError):
    """A de-identification setting that cannot work; the message names the setting."""


class OperatorSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operator: OperatorName = "replace"
    new_value: str | None = None  # replace: defaults to 〈placeholder〉
    masking_char: str = Field(default="*", min_length=1, max_length=1)
    chars_to_mask: int = Field(default=1000, ge=1)  # mask: more than the value's length masks all of it
    from_end: bool = False


class DeidConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entities: list[str] = Field(default_factory=lambda: list(ENTITIES))
    operators: dict[str, OperatorSpec] = Field(default_factory=dict)  # per entity; others use the defaults
    fields: tuple[str, ...] = DEID_FIELDS
    salt: SecretStr | None = None
    salt_env: str | None = "MEDAUG_DEID_SALT"
    key: SecretStr | None = None
    key_env: str | None = "MEDAUG_DEID_KEY"
    date_max_shift_days: int = Field(default=365, ge=1, le=3650)
    # Your own hospitals, added to the shipped gazetteer (curation/data/hospitals.txt): a listed name is
    # always removed, whatever precedes it. The file holds one name per line (# comments allowed).
    hospital_names: list[str] = Field(default_factory=list)
    hospital_names_file: Path | None = None
    hash_chars: int = Field(default=16, ge=8, le=64)

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(ENTITIES))
        if unknown:
            raise ValueError(f"unknown entity type(s) {unknown}; known: {list(ENTITIES)}")
        return v

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = sorted(set(v) - set(DEID_FIELDS))
        if bad:
            raise ValueError(f"cannot de-identify field(s) {bad}; text fields are {list(DEID_FIELDS)}")
        return v

    @model_validator(mode="after")
    def _operators_fit(self) -> DeidConfig:
        for entity, spec in self.operators.items():
            if entity not in ENTITIES:
                raise ValueError(f"operators: unknown entity type {entity!r}; known: {list(ENTITIES)}")
            allowed = _VALUE_OPERATORS.get(spec.operator)
            if allowed is not None and entity not in allowed:
                raise ValueError(f"operators.{entity}: {spec.operator!r} only applies to {sorted(allowed)}")
        return self

    def all_hospital_names(self) -> list[str]:
        names = list(self.hospital_names)
        if self.hospital_names_file is not None:
            try:
                lines = self.hospital_names_file.read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise DeidConfigError(
                    f"deid.hospital_names_file {self.hospital_names_file}: {e.strerror or e}"
                ) from e
            names.extend(ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#"))
        return names

    def operator_for(self, entity: str) -> OperatorSpec:
        if entity in self.operators:
            return self.operators[entity]
        return OperatorSpec(operator=_DEFAULT_OPERATORS.get(entity, "replace"))

    def resolved_salt(self) -> bytes | None:
        return _secret(self.salt, self.salt_env)

    def resolved_key(self) -> bytes | None:
        return _secret(self.key, self.key_env)

    def require_salt(self) -> bytes:
        salt = self.resolved_salt()
        if salt is None:
            raise DeidConfigError(
                f"the hash operator needs a salt: set deid.salt or the env var {self.salt_env!r}"
            )
        if len(salt) < 16:
            raise DeidConfigError(f"deid salt is {len(salt)} bytes; presidio's hash needs at least 16")
        return salt

    def require_key(self) -> bytes:
        key = self.resolved_key()
        if key is None:
            raise DeidConfigError(
                f"the encrypt operator needs a key: set deid.key or the env var {self.key_env!r}"
            )
        if len(key) not in (16, 24, 32):
            raise DeidConfigError(f"deid key is {len(key)} bytes; AES needs 16, 24 or 32")
        return key


def _secret(inline: SecretStr | None, env: str | None) -> bytes | None:
    if inline is not None:
        return inline.get_secret_value().encode("utf-8")
    if env and os.environ.get(env):
        return os.environ[env].encode("utf-8")
    return None
