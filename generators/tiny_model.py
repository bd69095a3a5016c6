"""Build a tiny Qwen2-architecture model with random weights, for tests and the offline demo.

No weights can be downloaded on these machines, so tests need a model made on
the spot. It is loaded by exactly the same code as a real model (a local folder
or hub id handed to vLLM), so the mechanics are real even if the text is noise.
Fixed seeds make the files byte-identical across rebuilds.
"""

from __future__ import annotations

import json
from pathlib import Path

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _training_lines() -> list[str]:
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
) -> Path:
    """Write config, random safetensors weights and a byte-level BPE tokenizer to `out_dir`.

    The defaults make the ≈1.6 M-parameter CPU test model; `qwen2_05b_shape()` gives the
    arguments for a Qwen2.5-0.5B-shaped model (≈370 M parameters) for GPU tests and benchmarks.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_lines(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
    )
    fast.chat_template = CHATML_TEMPLATE
    fast.save_pretrained(out)

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=tie_word_embeddings,
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        bos_token_id=None,
        torch_dtype=dtype,
    )
    model = Qwen2ForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(out, safe_serialization=True)
    (out / "generation_config.json").write_text(
        json.dumps({"eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id}),
        encoding="utf-8",
    )
    return out


def qwen2_05b_shape() -> dict[str, int | str]:
    """Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864), bf16."""
    return {
        "hidden_size": 896,
        "layers": 24,
        "heads": 14,
        "kv_heads": 2,
        "intermediate_size": 4864,
        "vocab_size": 16384,
        "dtype": "bfloat16",
    }
