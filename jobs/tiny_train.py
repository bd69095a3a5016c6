"""A short, deterministic CPU training run that teaches the tiny test model the 【field】 layout.

A random-weight model never writes the delimited layout, so the default output mode's success path
(plain decoding, parse, bounded retry) and the LLM augmenters' checks would only ever see failures.
The material is written here from the team's own data: prompts expanded from the shipped templates and
knowledge table, the demo seeds, and the augmenters' own requests, each rendered exactly as the LLM
stage sends it (same messages, same format instructions, the model's chat template). The generation
answers are short and regular (a fixed question per task, the prompt's patient and disease); the
augmenter answers come from the lexicon paraphraser and the rule-based negatives, so they pass the
checks the augmenters apply. All are in the layout `medaug.llm.output_format` parses. The text is not
medical advice: the model is a test fixture and says so in its config.json.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

# Bump when the material or the recipe changes: it is part of the build's cache key.
RECIPE_VERSION = 2
REPO = Path(__file__).resolve().parents[1]
DEMO_SEEDS = REPO / "configs" / "seeds" / "demo-seeds.jsonl"
# What the tokenizer corpus and the material are made from: a change here means a new build (cache key).
MATERIAL_MODULES = (
    "jobs.tiny_model",
    "jobs.tiny_train",
    "generators.expand",
    "generators.templates",
    "generators.knowledge",
    "medaug.llm.output_format",
    "medaug.llm.stage",
    "augmenters.llm_paraphrase",
    "augmenters.llm_negatives",
    "augmenters.paraphrase",
    "medaug.lexicon",
    "augmenters.preserve",
    "augmenters.negatives",
)
MATERIAL_DATA = (
    REPO / "generators" / "data",
    REPO / "augmenters" / "data",
    REPO / "medaug" / "data",
    DEMO_SEEDS,
)


def _native_bf16() -> bool:
    import torch

    return torch.backends.cpu.get_cpu_capability().startswith(("AVX512", "AMX"))


@dataclass(frozen=True)
class TrainConfig:
    """Fixed steps (not a time budget), so every machine trains the same model."""

    steps: int = 240
    batch_size: int = 8
    lr: float = 3e-3
    warmup: int = 10
    # Loss weight of header and end-of-turn tokens: the layout is the point (4.0 made headers repeat).
    layout_weight: float = 2.0
    seed: int = 0
    # Fixed (float reduction order); on a busy 2-core machine one thread also wastes no spin-waits.
    threads: int = 1
    # bf16 autocast only where the CPU computes bf16 natively: on an AVX2-only CPU it is emulated and a
    # minute of training becomes more than ten (measured on an AMD EPYC with AVX2). Part of the cache key.
    bf16: bool = field(default_factory=lambda: _native_bf16())
    generation_prompts: int = 300  # fewer distinct answers, seen more often: measured better than 600
    augmenter_material: bool = True  # the LLM augmenters' one-field 【output】 requests

    def key(self) -> dict[str, Any]:
        return {**asdict(self), "recipe": RECIPE_VERSION}


@dataclass(frozen=True)
class Example:
    messages: list[dict[str, str]]
    target: str  # the assistant's answer, in the layout the stage parses


def layout(values: dict[str, str]) -> str:
    from medaug.llm.output_format import header

    return "\n".join(f"{header(k)}{v}" for k, v in values.items())


# ------------------------------------------------------------------ generation answers from the slots
# Short, and regular on purpose: a two-layer model trained for a minute learns a layout it can see. Every
# body ends in its own mark (instruction "？", input the patient's "…岁", output "。"), so which header
# comes next is readable from the last token or two; the only text copied from the prompt is the
# patient and the disease, which keeps samples apart (dedup) without much to learn.
ASKS = {
    "medical_qa": "这要紧吗？",
    "record_generation": "病历怎么写？",
    "diagnostic_reasoning": "最可能是什么病？",
    "report_explanation": "报告是什么意思？",
}


def _answer(task: str, s: dict[str, str]) -> dict[str, str]:
    return {"instruction": ASKS[task], "input": s["patient"], "output": f"考虑{s['disease']}，建议就医。"}


def _stage_messages() -> Callable[[Any], list[dict[str, str]]]:
    """The stage's own message builder (delimited mode): one definition of what the model is sent."""
    from medaug.llm.engine import EngineConfig, SamplingConfig
    from medaug.llm.stage import LLMStage

    return LLMStage(EngineConfig(model="(training)"), SamplingConfig(), "delimited").messages


def generation_examples(n: int, seed: int) -> tuple[list[Example], list[dict[str, Any]]]:
    """Expanded template prompts with answers built from their slots; also the answers as sample rows."""
    from generators.expand import Quotas, expand
    from generators.knowledge import load_comorbidities, load_knowledge
    from generators.templates import load_templates
    from medaug.llm.stage import LLMRequest

    messages = _stage_messages()
    prompts = expand(load_templates(), load_knowledge(), load_comorbidities(), Quotas(total=n), seed=seed)
    examples, rows = [], []
    for p in prompts:
        values = _answer(p.task.value, p.slots)
        examples.append(Example(messages(LLMRequest(p.prompt_id, p.system, p.user)), layout(values)))
        rows.append(
            {
                "id": f"gen-{p.prompt_id}",
                "label": "positive",
                "area": p.area.value,
                "task": p.task.value,
                **values,
            }
        )
    return examples, rows


# ------------------------------------------------------------------ augmenter answers
def _demo_rows() -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(DEMO_SEEDS.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            r = json.loads(line)
            rows.append({"id": f"demo-{i}", "label": "positive", "input": r.get("input", ""), **r})
    return rows


def paraphrase_examples(rows: list[dict[str, Any]]) -> list[Example]:
    """Lexicon rewrites of the answer that the preservation check accepts (others are not taught).

    Only the `output` field: a one-field 【instruction】 answer would begin like the generation layout
    and end after its first field, the very mistake the training is there to remove."""
    from augmenters.llm_paraphrase import MODES, build_request
    from augmenters.paraphrase import normalize_line
    from augmenters.preserve import PreservationCheck
    from medaug.lexicon import load_lexicon

    lexicon = load_lexicon()
    check = PreservationCheck(lexicon)
    messages = _stage_messages()
    lead = {"plain_answer": "简单来说，", "clinical_answer": "综合考虑，"}
    examples = []
    for row in rows:
        for mode, m in MODES.items():
            if m.field != "output":
                continue
            direction = "to_clinical" if mode == "clinical_answer" else "to_colloquial"
            rewrite = lead[mode] + normalize_line(row[m.field], lexicon, direction)
            if check.check(row[m.field], rewrite) is None:
                examples.append(Example(messages(build_request(row, mode)), layout({m.field: rewrite})))
    return examples


def negative_examples(rows: list[dict[str, Any]], seed: int) -> list[Example]:
    """Rule-based negatives of each error type that show the error the LLM augmenter checks for."""
    from augmenters.llm_negatives import build_request, shows_error
    from augmenters.negatives import CONSTRUCTORS, Candidate, load_negative_knowledge, make_negative

    kb = load_negative_knowledge()
    messages = _stage_messages()
    examples = []
    for row in rows:
        for et in CONSTRUCTORS:
            made = make_negative(row, et, seed, kb)
            if not isinstance(made, Candidate):
                continue
            wrong = made.output
            if wrong.strip() and wrong != row["output"] and shows_error(et, row["output"], wrong, kb):
                examples.append(Example(messages(build_request(row, et)), layout({"output": wrong})))
    return examples


def training_examples(cfg: TrainConfig) -> list[Example]:
    gen, gen_rows = generation_examples(cfg.generation_prompts, cfg.seed)
    if not cfg.augmenter_material:
        return gen
    aug_rows = _demo_rows() + gen_rows[: len(gen_rows) // 6]
    return gen + paraphrase_examples(aug_rows) + negative_examples(aug_rows, cfg.seed)


def corpus_lines(examples: list[Example]) -> list[str]:
    """Text for the tokenizer: what the model will be sent and what it should answer."""
    lines = []
    for ex in examples:
        lines.extend(m["content"] for m in ex.messages)
        lines.append(ex.target)
    return lines


# ------------------------------------------------------------------ training
def encode(examples: list[Example], tokenizer: PreTrainedTokenizerFast) -> list[tuple[list[int], int]]:
    """Token ids of prompt + answer + end-of-turn, and where the answer starts (loss only on the answer)."""
    out = []
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    for ex in examples:
        prompt = tokenizer.apply_chat_template(ex.messages, tokenize=False, add_generation_prompt=True)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t_ids = tokenizer(ex.target, add_special_tokens=False)["input_ids"]
        out.append((p_ids + t_ids + [eos], len(p_ids)))
    return out


def train(
    model: Qwen2ForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    examples: list[Example],
    cfg: TrainConfig,
    log: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """AdamW with warmup and cosine decay over fixed steps, shuffled batches, loss on the answer only."""
    import math

    import torch

    from medaug.llm.output_format import header
    from medaug.llm.stage import SAMPLE_FIELDS

    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        data = encode(examples, tokenizer)
        rng = random.Random(cfg.seed)
        pad = tokenizer.pad_token_id
        layout_ids = torch.tensor(
            [tokenizer.convert_tokens_to_ids(t) for t in (*map(header, SAMPLE_FIELDS), "<|im_end|>")]
        )
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.98))

        def lr_at(step: int) -> float:
            if step < cfg.warmup:
                return (step + 1) / cfg.warmup
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - cfg.warmup) / (cfg.steps - cfg.warmup)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
        model.train()
        order: list[int] = []
        first = last = float("nan")
        for step in range(cfg.steps):
            if len(order) < cfg.batch_size:
                more = list(range(len(data)))
                rng.shuffle(more)
                order += more
            batch = [data[i] for i in order[: cfg.batch_size]]
            del order[: cfg.batch_size]
            width = max(len(seq) for seq, _ in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            labels = torch.full((len(batch), width), -100, dtype=torch.long)
            for b, (seq, start) in enumerate(batch):
                ids[b, : len(seq)] = torch.tensor(seq)
                mask[b, : len(seq)] = 1
                labels[b, start : len(seq)] = torch.tensor(seq[start:])
            # Next-token targets: position t predicts t+1; logits only where there is a target.
            target = labels[:, 1:]
            sel = target != -100
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
                logits = model.lm_head(hidden[:, :-1][sel])
            picked = target[sel]
            weights = torch.where(torch.isin(picked, layout_ids), cfg.layout_weight, 1.0)
            losses = torch.nn.functional.cross_entropy(logits.float(), picked, reduction="none")
            loss = (losses * weights).sum() / weights.sum()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            last = float(loss.detach())
            if step == 0:
                first = last
            if log and (step % 20 == 0 or step == cfg.steps - 1):
                log(f"step {step} loss {last:.3f}")
        model.eval()
        return {"first_loss": first, "last_loss": last, "examples": float(len(data))}
    finally:
        torch.set_num_threads(threads)
