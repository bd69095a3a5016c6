"""The real LLaMA-Factory (0.9.5) trains on a release: LoRA SFT and DPO steps on CPU with the tiny model.

LLaMA-Factory imports torchaudio, which has no build for the project's torch, so it lives in a virtualenv of
its own (scripts/install-llamafactory.sh; $MEDAUG_LF_VENV, default .venv-lf) and runs as a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import yaml
from release_queue import Queue, fill_queue

from review_queue.export import export_version
from review_queue.release import merge_from_store
from review_queue.train_config import LORA

REPO = Path(__file__).resolve().parents[2]
LF_VENV = Path(os.environ.get("MEDAUG_LF_VENV", REPO / ".venv-lf"))
CPU = [
    "bf16=false",
    "use_cpu=true",
    "num_train_epochs=1",
    "gradient_accumulation_steps=1",
    "logging_steps=1",
    "save_steps=100000",
    "plot_loss=false",
]


def _cli() -> Path:
    cli = LF_VENV / "bin" / "llamafactory-cli"
    assert cli.is_file(), (
        f"LLaMA-Factory is not installed at {LF_VENV}: run scripts/install-llamafactory.sh "
        "(or set MEDAUG_LF_VENV to a virtualenv with llamafactory==0.9.5)"
    )
    return cli


def _train(config: Path, model: Path, out: Path, cwd: Path, *overrides: str) -> tuple[str, dict]:
    """Run `llamafactory-cli train CONFIG key=value ...`; its log and trainer_state.json."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_CACHE=str(cwd / "hf-datasets"),
        OMP_NUM_THREADS="2",
        PATH=f"{LF_VENV / 'bin'}:{env.get('PATH', '')}",
    )
    cmd = [
        str(_cli()),
        "train",
        str(config),
        f"model_name_or_path={model}",
        f"output_dir={out}",
        *CPU,
        *overrides,
    ]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"llamafactory-cli failed ({proc.returncode}):\n{log[-4000:]}"
    return log, json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))


def _examples(log: str) -> int:
    """The trainer's `Num examples` after LLaMA-Factory's loader, converter and tokenizer (drops show here)."""
    found = re.findall(r"Num examples = ([\d,]+)", log)
    assert found, f"no 'Num examples' in the log:\n{log[-3000:]}"
    return int(found[0].replace(",", ""))


def _finite_losses(state: dict) -> list[float]:
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert losses and all(math.isfinite(x) for x in losses), f"losses {losses}"
    return losses


def test_llamafactory_trains_sft_and_dpo_on_every_row(queue: Queue, tiny_model: Path, tmp_path: Path) -> None:
    _cli()  # fail first, with the install hint, before building anything
    fill_queue(queue.store, "乙")  # a second reviewed batch: 16 rows, 2 preference pairs
    root = tmp_path / "ds"
    merge_from_store(queue.store, root=root, dataset="cardio", created_by="m")
    plain = export_version(root, "cardio", 1, "llamafactory")
    pref = export_version(
        root, "cardio", 1, "llamafactory", split="preference", style="sharegpt", base_model=str(tiny_model)
    )
    assert pref.path == plain.path and pref.kept == {"cardio_v1.json": 16}
    rows = {
        "cardio_v1": 16,
        "cardio_v1_sft": pref.files["cardio_v1_sft.jsonl"],
        "cardio_v1_preference": pref.files["cardio_v1_preference.jsonl"],
    }
    assert rows["cardio_v1_sft"] == 12 and rows["cardio_v1_preference"] == 2

    sft_cfg = yaml.safe_load((pref.path / "train_lora.yaml").read_text(encoding="utf-8"))
    assert {k: sft_cfg[k] for k in LORA} == LORA and sft_cfg["stage"] == "sft"
    assert sft_cfg["dataset"] == "cardio_v1_sft" and Path(sft_cfg["dataset_dir"]) == pref.path.resolve()
    assert sft_cfg["model_name_or_path"] == str(tiny_model) and "max_samples" not in sft_cfg

    # SFT on both splits' entries at once: the kept `none` entry and the new `sft` entry both load, every row
    batch = 4
    log, state = _train(
        pref.path / "train_lora.yaml",
        tiny_model,
        tmp_path / "sft",
        tmp_path,
        "dataset=cardio_v1,cardio_v1_sft",
        f"per_device_train_batch_size={batch}",
    )
    assert _examples(log) == rows["cardio_v1"] + rows["cardio_v1_sft"]
    assert state["epoch"] == 1.0 and state["global_step"] == math.ceil(28 / batch)
    assert len(_finite_losses(state)) == state["global_step"]
    assert (tmp_path / "sft" / "adapter_model.safetensors").is_file()

    dpo_cfg = yaml.safe_load((pref.path / "train_dpo.yaml").read_text(encoding="utf-8"))
    assert dpo_cfg["stage"] == "dpo" and dpo_cfg["dataset"] == "cardio_v1_preference"
    log, state = _train(
        pref.path / "train_dpo.yaml", tiny_model, tmp_path / "dpo", tmp_path, "per_device_train_batch_size=1"
    )
    assert _examples(log) == rows["cardio_v1_preference"]
    assert state["epoch"] == 1.0 and state["global_step"] == rows["cardio_v1_preference"]
    _finite_losses(state)
    assert any("rewards/margins" in h for h in state["log_history"]), "a DPO run logs reward margins"
