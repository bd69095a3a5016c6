"""Generation stage overhead: raw `vllm.LLM.generate` vs medaug's LLM stage on the same prompts, same engine.

    python bench/generate_overhead.py                      # CPU build, tiny test model (built/cached on the fly)
    python bench/generate_overhead.py --model /path --prompts 2048 --max-tokens 256 --repeats 3   # GPU

Prompts come from the project's own templates. Three comparisons, each alternated
and repeated (back-to-back runs on one engine differ by up to 20 %):
1. overhead: raw LLM.generate (unconstrained, natural prompt order) vs the job's stage
   (GenerateStage.process: chat rendering, per-request seeds, prefix grouping,
   parsing, Sample construction) in its default output mode, retries off;
2. prefix grouping: the stage with grouping on vs off (prefix cache reset before each run);
3. output modes: delimited / regex / json throughput and parse rate on the first try (retries off).
With the default (tiny, trained) model, the output modes are measured again on the same-shaped
random-weight model in a child process (`random_*` figures): what the training buys.
Ends with one RESULT line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder or hub id (default: build the tiny CPU model)")
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="delimited,regex,json")
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument(
        "--modes-only", action="store_true", help="only the output-mode figures, as one JSON line"
    )
    ap.add_argument("--no-random", action="store_true", help="skip the random-weight comparison")
    args = ap.parse_args()

    from medaug.llm.engine import CPU_ENGINE_ENV

    for k, v in CPU_ENGINE_ENV.items():
        os.environ.setdefault(k, v)
    from vllm import SamplingParams

    from generators.expand import Quotas, expand
    from generators.knowledge import load_comorbidities, load_knowledge
    from generators.stages import GenerateStage, prompt_to_dict, prompts_table
    from generators.templates import load_templates
    from medaug.llm.engine import EngineConfig, SamplingConfig, VLLMEngine
    from medaug.llm.stage import request_seed

    model, random_model = args.model, None
    if model is None:
        from jobs.tiny_model import build_tiny_model
        from medaug.test_model import TEST_MODEL_MARK

        base = Path(tempfile.gettempdir()) / f"{TEST_MODEL_MARK}-bench"
        t = time.perf_counter()
        model = str(build_tiny_model(base / "tiny-qwen2", train=True))
        print(f"trained tiny model ready in {time.perf_counter() - t:.1f} s (cached after the first build)")
        if not args.no_random:
            random_model = str(build_tiny_model(base / "tiny-qwen2-random", train=False))
    engine = VLLMEngine(EngineConfig(model=model, max_model_len=args.max_model_len))
    sampling = SamplingConfig(temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, seed=1)
    prompts = expand(
        load_templates(), load_knowledge(), load_comorbidities(), Quotas(total=args.prompts), seed=1
    )
    rows = [prompt_to_dict(p) for p in prompts]

    # Constrained modes must be able to close all three fields within max_tokens.
    field_chars = max(8, args.max_tokens // 4)

    table = prompts_table(prompts)

    def worker(mode: str, group: bool = True) -> GenerateStage:
        llm = {"engine_config": EngineConfig(model=model), "sampling": sampling, "output_mode": mode,
               "max_retries": 0, "field_max_chars": field_chars}  # fmt: skip
        w = GenerateStage(llm, run_id="bench", job_id=None, engine=engine)
        w.llm_stage.group_by_prefix = group
        return w

    def reset_cache() -> None:
        engine.llm.reset_prefix_cache()

    # The raw baseline sees exactly the text the stage sends (same chat rendering, same format instructions).
    stage0 = worker("delimited").llm_stage
    from medaug.llm.stage import LLMRequest

    reqs = [LLMRequest(r["prompt_id"], r["system"], r["user"]) for r in rows]
    raw_texts = [engine.render(stage0.messages(q)) for q in reqs]
    raw_params = [
        SamplingParams(temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, seed=request_seed(1, q.key))
        for q in reqs
    ]

    def run_raw() -> tuple[float, int]:
        reset_cache()
        t = time.perf_counter()
        outs = engine.llm.generate(raw_texts, raw_params, use_tqdm=False)
        return time.perf_counter() - t, sum(len(o.outputs[0].token_ids) for o in outs)

    def run_stage(mode: str, group: bool = True) -> tuple[float, int, int]:
        reset_cache()
        w = worker(mode, group)
        t = time.perf_counter()
        res = w.process(table)
        return time.perf_counter() - t, res.stats.extra["output_tokens"], res.stats.rows_out

    def run_modes() -> dict[str, tuple[float, float]]:
        figs = {}
        for mode in args.modes.split(","):
            dts, toks_l, ok = [], [], 0
            for _ in range(args.repeats):
                dt, toks, ok = run_stage(mode)
                dts.append(dt)
                toks_l.append(toks)
            figs[mode] = (statistics.median(t / d for t, d in zip(toks_l, dts, strict=True)), ok / len(rows))
        return figs

    run_stage("delimited")  # warm-up
    if args.modes_only:
        print(json.dumps(run_modes()))
        return 0
    run_raw()
    raw_tps, stage_tps, flat_tps = [], [], []
    for _ in range(args.repeats):
        dt, toks = run_raw()
        raw_tps.append(toks / dt)
        dt, toks, _ = run_stage("delimited", True)
        stage_tps.append(toks / dt)
        dt, toks, _ = run_stage("delimited", False)
        flat_tps.append(toks / dt)
    raw, ours, flat = statistics.median(raw_tps), statistics.median(stage_tps), statistics.median(flat_tps)
    print(
        f"raw LLM.generate          {raw:10.0f} output tok/s  (runs: {', '.join(f'{x:.0f}' for x in raw_tps)})"
    )
    print(
        f"stage, delimited, grouped {ours:10.0f} output tok/s  (runs: {', '.join(f'{x:.0f}' for x in stage_tps)})"
    )
    print(
        f"stage, delimited, natural {flat:10.0f} output tok/s  (runs: {', '.join(f'{x:.0f}' for x in flat_tps)})"
    )
    print(f"overhead ratio stage/raw = {ours / raw:.3f}; prefix grouping ratio = {ours / flat:.3f}")

    mode_figs = run_modes()
    for mode, (tps, rate) in mode_figs.items():
        print(f"mode {mode:<10} {tps:10.0f} output tok/s   first-try parse rate {rate:.2f}   ({model})")
    figs = " ".join(f"{m}_tok_s={v[0]:.0f} {m}_parse={v[1]:.2f}" for m, v in mode_figs.items())
    if random_model is not None:
        del engine, stage0  # one engine per process at a time on the CPU build: the child gets the cores
        cmd = [sys.executable, __file__, "--model", random_model, "--modes-only", "--prompts", str(args.prompts),
               "--max-tokens", str(args.max_tokens), "--repeats", str(args.repeats), "--modes", args.modes,
               "--max-model-len", str(args.max_model_len)]  # fmt: skip
        child = subprocess.run(cmd, capture_output=True, text=True, check=True)
        random_figs = json.loads(child.stdout.strip().splitlines()[-1])
        for mode, (tps, rate) in random_figs.items():
            print(
                f"mode {mode:<10} {tps:10.0f} output tok/s   first-try parse rate {rate:.2f}   (random weights)"
            )
        figs += " " + " ".join(
            f"random_{m}_tok_s={v[0]:.0f} random_{m}_parse={v[1]:.2f}" for m, v in random_figs.items()
        )
    print(
        f"RESULT prompts={len(rows)} max_tokens={args.max_tokens} raw_tok_s={raw:.0f} stage_tok_s={ours:.0f} "
        f"ratio={ours / raw:.3f} natural_order_tok_s={flat:.0f} prefix_ratio={ours / flat:.3f} {figs}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
