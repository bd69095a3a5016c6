"""Build a tiny Qwen2-architecture test model (random weights, or briefly trained with `train=True`).

No weights can be downloaded on these machines, so tests and the offline demo need a model made on
the spot. It is loaded by exactly the same code as a real model (a local folder or hub id handed to
vLLM), so the mechanics are real, and its config.json says it is a test model (`medaug_test_model`):
its text is not medical. `train=True` runs `jobs.tiny_train` (about a minute of CPU): the model then
writes the 【field】 layout unconstrained most of the time (the demo's model; bench/RESULTS.md).

Fixed seeds and a fixed thread count make a rebuild give the same files. A build records its inputs'
hash in `medaug_build.json`: an identical rebuild is skipped, and finished builds are kept in a cache
folder (`MEDAUG_MODEL_CACHE`, default `~/.cache/medaug/models`; empty string: no cache) and copied
from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
BUILD_RECORD = "medaug_build.json"
BUILD_VERSION = 2  # bump when this file's output changes
REPO = Path(__file__).resolve().parents[1]


def _base_lines() -> list[str]:
    """Chinese text the team ships (templates, knowledge table, lexicon terms) plus format tokens."""
    from generators.knowledge import load_knowledge
    from generators.templates import load_templates

    lines: list[str] = []
    for t in load_templates():
        lines.extend([t.system, t.user])
    for d in load_knowledge():
        lines.append(" ".join([d.name, *d.symptoms_clinical, *d.symptoms_colloquial, *d.findings, *d.drugs]))
    lines += ["指令：", "输入：", "输出：", "###", '{"instruction": "", "input": "", "output": ""}']
    lines += [str(i) for i in range(200)]
    return lines


def model_cache_dir() -> Path | None:
    env = os.environ.get("MEDAUG_MODEL_CACHE")
    if env is not None:
        return Path(env) if env else None
    return Path.home() / ".cache" / "medaug" / "models"


def build_tiny_model(
    out_dir: str | Path,
    *,
    hidden_size: int = 256,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    vocab_size: int = 2048,
    intermediate_size: int | None = None,
    tie_word_embeddings: bool = True,
    dtype: str = "float32",
    seed: int = 0,
    train: bool = False,
    log: Any = None,
) -> Path:
    """Write config, safetensors weights and a byte-level BPE tokenizer to `out_dir`; returns it.

    The defaults make the ≈ 1.6 M-parameter CPU test model (random); `qwen2_05b_shape()` gives the
    arguments for a Qwen2.5-0.5B-shaped model (≈ 370 M parameters, random) for GPU tests and benchmarks.
    """
    from jobs.tiny_train import TrainConfig

    out = Path(out_dir)
    shape = {
        "hidden_size": hidden_size,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads,
        "vocab_size": vocab_size,
        "intermediate_size": intermediate_size or hidden_size * 2,
        "tie_word_embeddings": tie_word_embeddings,
        "dtype": dtype,
        "seed": seed,
    }
    tcfg = TrainConfig(seed=seed) if train else None
    key = build_key(shape, tcfg)
    if _recorded_key(out) == key:
        return out
    if (out / "config.json").exists() and _recorded_key(out) is None:
        raise FileExistsError(
            f"{out} holds a model medaug did not build (no {BUILD_RECORD}); not overwriting it"
        )
    cache = model_cache_dir()
    cached = cache / f"tiny-qwen2-{key[:16]}" if cache else None
    out.parent.mkdir(parents=True, exist_ok=True)
    if cached is not None and _recorded_key(cached) == key:
        _publish(cached, out, copy=True)
        return out
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        _write_model(tmp, shape, tcfg, log)
        (tmp / BUILD_RECORD).write_text(
            json.dumps({"key": key, **shape, "train": tcfg.key() if tcfg else None})
        )
        if cached is not None:
            _store_in_cache(tmp, cached)
        _publish(tmp, out, copy=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def build_key(shape: dict[str, Any], tcfg: Any) -> str:
    """Hash of everything a build is made from: its arguments, the code and data files the tokenizer
    corpus and the training material come from. Reading files is cheap; making the material is not."""
    from importlib.util import find_spec

    from jobs.tiny_train import MATERIAL_DATA, MATERIAL_MODULES

    modules = (
        MATERIAL_MODULES if tcfg else ("jobs.tiny_model", "generators.templates", "generators.knowledge")
    )
    data = MATERIAL_DATA if tcfg else (REPO / "generators" / "data",)
    h = hashlib.sha256()
    h.update(json.dumps([BUILD_VERSION, shape, tcfg.key() if tcfg else None], sort_keys=True).encode())
    files = []
    for m in modules:  # located, not imported
        spec = find_spec(m)
        if spec is None or spec.origin is None:
            raise ImportError(f"cannot find module {m} (tiny model build inputs)")
        files.append(Path(spec.origin))
    for d in data:
        files += (
            sorted(p for p in d.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
            if d.is_dir()
            else [d]
        )
    for f in files:
        h.update(
            f"{f.relative_to(REPO) if f.is_relative_to(REPO) else f.name}\0".encode() + f.read_bytes() + b"\0"
        )
    return h.hexdigest()


def _recorded_key(folder: Path) -> str | None:
    try:
        return json.loads((folder / BUILD_RECORD).read_text(encoding="utf-8"))["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _publish(src: Path, out: Path, *, copy: bool) -> None:
    """Put a finished build at `out`, replacing an older medaug build there in one rename."""
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-new-", dir=out.parent)) if copy else src
    try:
        if copy:
            shutil.rmtree(staging)
            shutil.copytree(src, staging)
        if out.exists():
            old = out.with_name(f".{out.name}-old-{os.getpid()}")
            os.replace(out, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staging, out)
    finally:
        if copy:
            shutil.rmtree(staging, ignore_errors=True)


def _store_in_cache(build: Path, cached: Path) -> None:
    """Best effort: a cache that cannot be written (read-only home, a racing build) is skipped."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{cached.name}-", dir=cached.parent))
        shutil.rmtree(tmp)
        shutil.copytree(build, tmp)
        try:
            os.replace(tmp, cached)
        except OSError:  # another process published the same key first
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        pass


def _write_model(out: Path, shape: dict[str, Any], tcfg: Any, log: Any) -> None:
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from jobs.tiny_train import corpus_lines, training_examples
    from jobs.tiny_train import train as train_model
    from medaug.llm.output_format import header
    from medaug.llm.stage import SAMPLE_FIELDS

    examples = training_examples(tcfg) if tcfg is not None else []
    lines = _base_lines() + corpus_lines(examples)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=shape["vocab_size"],
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    if (
        tcfg is not None
    ):  # each 【field】 header one token (plain text, not special): fewer decisions to learn
        tok.add_tokens([AddedToken(header(f), normalized=False, special=False) for f in SAMPLE_FIELDS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(shape["seed"])
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape["kv_heads"],
        max_position_embeddings=4096,
        tie_word_embeddings=shape["tie_word_embeddings"],
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
        torch_dtype=shape["dtype"],
        # Says what this is to anyone who opens the folder: a test fixture, its text is not medical.
        medaug_test_model=True,
        medaug_note="medaug test model: tiny, trained for a minute on template text; its text is not medical",
    )
    model = Qwen2ForCausalLM(config)
    if tcfg is not None:
        train_model(model, fast, examples, tcfg, log=log)
    model = model.to(getattr(torch, shape["dtype"]))
    model.save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").write_text(
        json.dumps({"eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id}),
        encoding="utf-8",
    )


def qwen2_05b_shape() -> dict[str, Any]:
    """Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864), bf16, random."""
    return {
        "hidden_size": 896,
        "layers": 24,
        "heads": 14,
        "kv_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 16384,
        "dtype": "bfloat16",
        "train": False,
    }
