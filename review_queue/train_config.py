"""Ready LLaMA-Factory training configs written into every LLaMA-Factory export.

`llamafactory-cli train <export>/train_lora.yaml` fine-tunes on the release with the seed article's LoRA
settings (r=8, alpha 16, dropout 0.1, q_proj/v_proj); `train_dpo.yaml` (preference splits) runs DPO on the
chosen/rejected pairs. Any key can be overridden on the command line (`... train_lora.yaml key=value`).
"""

from __future__ import annotations

import json
from pathlib import Path

# A sensible default base model: Chinese-capable, instruction-tuned, fits one 80 GB GPU in bf16.
DEFAULT_BASE_MODEL = "Qwen/Qwen2.5-7B-Instruct"
DEFAULT_TEMPLATE = "qwen"  # LLaMA-Factory's chat template for the Qwen2/2.5 family
LORA = {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.1, "lora_target": "q_proj,v_proj"}
SFT_FILE = "train_lora.yaml"
DPO_FILE = "train_dpo.yaml"


def _q(value: object) -> str:
    """A YAML scalar: JSON strings are valid YAML and survive any path or model id."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and 0 < abs(value) < 1e-3:
        return f"{value:.1e}"  # 5.0e-06: YAML 1.1 (PyYAML) reads 5e-06 as a string
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else str(value)


def training_yaml(
    stage: str, datasets: list[str], dataset_dir: Path, *, base_model: str, template: str, output_dir: str
) -> str:
    """One LLaMA-Factory config; every row of `datasets` is used (no max_samples)."""
    if stage not in ("sft", "dpo"):
        raise ValueError(f"stage must be sft or dpo, got {stage!r}")
    method = {"stage": stage, "do_train": True, "finetuning_type": "lora", **LORA}
    if stage == "dpo":
        method |= {"pref_beta": 0.1, "pref_loss": "sigmoid"}
    train = {
        "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 8,
        "learning_rate": 1.0e-4 if stage == "sft" else 5.0e-6,
        "num_train_epochs": 3.0,
        "lr_scheduler_type": "cosine",
        "warmup_ratio": 0.1,
        "bf16": True,
    }
    sections = [
        (
            "model (override: model_name_or_path=PATH_OR_HUB_ID template=NAME)",
            {"model_name_or_path": base_model, "trust_remote_code": True},
        ),
        ("method (the seed article's LoRA settings)", method),
        (
            "dataset (dataset_dir is this export folder; override it if the folder moves)",
            {
                "dataset": ",".join(datasets),
                "dataset_dir": str(dataset_dir.resolve()),
                "template": template,
                "cutoff_len": 2048,
                "overwrite_cache": True,
            },
        ),
        (
            "output",
            {
                "output_dir": output_dir,
                "logging_steps": 10,
                "save_steps": 500,
                "plot_loss": True,
                "overwrite_output_dir": True,
                "report_to": "none",
            },
        ),
        ("train (bf16 needs a GPU; on a CPU add bf16=false use_cpu=true)", train),
    ]
    lines = [
        f"# LLaMA-Factory {stage.upper()} config written by medaug export. Train: llamafactory-cli train "
        f"{dataset_dir.resolve() / (SFT_FILE if stage == 'sft' else DPO_FILE)}"
    ]
    for title, values in sections:
        lines += ["", f"### {title}"]
        lines += [f"{k}: {_q(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_training_configs(
    folder: Path,
    final_dir: Path,
    stem: str,
    sft: list[str],
    ranking: list[str],
    *,
    base_model: str,
    template: str,
) -> list[str]:
    """train_lora.yaml for `sft` entries, train_dpo.yaml when there are `ranking` entries; names written.

    `folder` is where the files go now (a temporary folder), `final_dir` where the export will live."""
    written: list[str] = []
    if sft:
        (folder / SFT_FILE).write_text(
            training_yaml(
                "sft",
                sft,
                final_dir,
                base_model=base_model,
                template=template,
                output_dir=f"saves/{stem}/lora/sft",
            ),
            encoding="utf-8",
        )
        written.append(SFT_FILE)
    if ranking:
        (folder / DPO_FILE).write_text(
            training_yaml(
                "dpo",
                ranking,
                final_dir,
                base_model=base_model,
                template=template,
                output_dir=f"saves/{stem}/lora/dpo",
            ),
            encoding="utf-8",
        )
        written.append(DPO_FILE)
    return written
