"""LLM paraphrase and LLM negatives through the real CPU vLLM build and the tiny model: the text is
noise, the mechanics (prompts, structured output, checks, mapping back, counted rejections) are real."""

from __future__ import annotations

import json
import os

import pytest

from augmenters.llm_negatives import (
    ERROR_PROMPTS,
    llm_negatives_table,
    shows_error,
)
from augmenters.llm_negatives import (
    build_request as negative_request,
)
from augmenters.llm_paraphrase import (
    MODES,
    llm_paraphrase_table,
    outcomes_to_rows,
)
from augmenters.llm_paraphrase import (
    build_request as paraphrase_request,
)
from augmenters.negatives import load_negative_knowledge
from augmenters.preserve import PreservationCheck
from medaug.llm.engine import CPU_ENGINE_ENV
from medaug.schema import ErrorType, samples_to_table, table_to_samples

for _k, _v in CPU_ENGINE_ENV.items():
    os.environ.setdefault(_k, _v)


@pytest.fixture(scope="module")
def stage(tiny_model):
    from medaug.llm.engine import EngineConfig, SamplingConfig
    from medaug.llm.stage import LLMStage

    cfg = EngineConfig(model=str(tiny_model), device="cpu", max_model_len=2048)
    # Short fields so the random model closes its JSON within max_tokens and the checks get to run.
    sampling = SamplingConfig(temperature=0.7, max_tokens=64, seed=3)
    return LLMStage(cfg, sampling, "json", max_retries=1, field_max_chars=12)


def _outcome(key, fields, error=None):
    from medaug.llm.stage import LLMOutcome

    return LLMOutcome(
        key, fields, error, attempts=1, seed=42, prompt_tokens=10, output_tokens=5, finish_reason="stop"
    )


def test_paraphrase_prompts_carry_the_rules(samples):
    row = samples_to_table(samples).to_pylist()[0]
    req = paraphrase_request(row, "patient_question")
    assert req.fields == ("instruction",) and row["instruction"] in req.user and "否定" in req.user
    assert paraphrase_request(row, "plain_answer").fields == ("output",)
    assert len({paraphrase_request(row, m).key for m in MODES}) == len(MODES)


def test_paraphrase_mapping_keeps_faithful_and_rejects_unfaithful(samples, core_lexicon):
    row = samples_to_table(samples).to_pylist()[0]
    faithful = "患者男，58岁，胸痛30分钟，出冷汗，心电图示ST段抬高，应该怎么处理？"
    lost_number = "患者男，58岁，胸痛3分钟，出冷汗，心电图示ST段抬高，应该怎么处理？"
    outs = [
        _outcome("a", {"instruction": faithful}),
        _outcome("b", {"instruction": lost_number}),
        _outcome("c", None, "no_json"),
    ]
    derived, rejected, counts = outcomes_to_rows(
        [row, row, row][:1] * 1,
        ["patient_question"],
        outs[:1],
        PreservationCheck(core_lexicon),
        {"model": "m"},
    )
    assert [d["instruction"] for d in derived] == [faithful] and not rejected
    assert derived[0]["provenance"]["parent_id"] == row["id"]
    assert derived[0]["provenance"]["model"] == "m" and derived[0]["provenance"]["sampling_seed"] == 42
    step = derived[0]["provenance"]["augmentation"][-1]
    assert step["augmenter"] == "llm_paraphrase"
    assert json.loads(step["detail"])["prompt"] == paraphrase_request(row, "patient_question").user
    for o, reason in ((outs[1], "fact_changed:duration_lost"), (outs[2], "llm_no_json")):
        derived, rejected, counts = outcomes_to_rows(
            [row], ["patient_question"], [o], PreservationCheck(core_lexicon), {}
        )
        assert not derived and [r[:2] for r in rejected] == [(row["id"], f"llm_paraphrase:{reason}")]
        assert counts[f"llm_paraphrase_rejected_{reason.removeprefix('fact_changed:')}"] == 1
    detail = json.loads(
        outcomes_to_rows([row], ["patient_question"], [outs[1]], PreservationCheck(core_lexicon), {})[1][0][2]
    )
    assert detail["mode"] == "patient_question" and detail["facts_before"] and detail["facts_after"]
    assert detail["changes"][0]["before"]["term"] == "30 minute"


def test_preservation_check_reasons(core_lexicon):
    check = PreservationCheck(core_lexicon)
    o = "患者胸痛2小时，无发热，左侧下肢麻木，服用阿司匹林100mg。"
    assert check.check(o, "病人胸口疼了2小时，没有发烧，左边腿发麻，吃了阿司匹林100mg。") is None
    changed = "fact_changed:symptom_"
    assert (
        check.check(o, "病人胸口疼了2小时，有发烧，左边腿发麻，吃了阿司匹林100mg。") == changed + "negation"
    )
    assert check.check(o, "病人2小时，没有发烧，左边腿发麻，吃了阿司匹林100mg。") == changed + "lost"
    assert (
        check.check(o, "病人胸口疼了2小时，没有发烧，右边腿发麻，吃了阿司匹林100mg。")
        == changed + "laterality"
    )
    assert (
        check.check(o, "病人胸口疼了2小时，没有发烧，左边腿发麻，吃了布洛芬100mg。")
        == "fact_changed:drug_lost"
    )
    assert check.check(o, o) == "unchanged"


def test_injection_check_per_error_type():
    kb = load_negative_knowledge()
    ref = "考虑急性心肌梗死，应立即拨打120。可嚼服阿司匹林300mg。"
    assert shows_error(ErrorType.wrong_dose, ref, ref.replace("300mg", "3000mg"), kb)
    assert not shows_error(ErrorType.wrong_dose, ref, ref + "注意休息。", kb)
    assert shows_error(ErrorType.wrong_drug, ref, ref.replace("阿司匹林", "华法林"), kb)
    assert shows_error(ErrorType.wrong_diagnosis, ref, ref.replace("急性心肌梗死", "急性心包炎"), kb)
    assert not shows_error(ErrorType.wrong_diagnosis, ref, ref.replace("300mg", "30mg"), kb)
    assert shows_error(ErrorType.missing_referral, ref, "考虑急性心肌梗死。可嚼服阿司匹林300mg。", kb)
    assert shows_error(ErrorType.overclaiming, ref, ref + "保证治愈。", kb)
    assert not shows_error(ErrorType.overclaiming, ref, ref.replace("考虑", "可能"), kb)
    req = negative_request({"id": "x", "instruction": "问", "input": "", "output": ref}, ErrorType.wrong_dose)
    assert ERROR_PROMPTS[ErrorType.wrong_dose] in req.user and ref in req.user


def test_llm_paraphrase_end_to_end(stage, samples, core_lexicon):
    table = samples_to_table(samples)
    res = llm_paraphrase_table(table, stage, core_lexicon, modes=("patient_question", "plain_answer"))
    assert res.kept.num_rows + res.rejected.num_rows == 6
    assert sum(res.stats.rejects.values()) == res.rejected.num_rows
    reasons = {r.split(":", 1)[1] for r in res.rejected.column("reason").to_pylist()}
    known = {
        "empty",
        "unchanged",
        "number_changed",
        "drug_changed",
        "laterality_changed",
        "entity_lost",
        "negation_changed",
    }
    assert all(r in known or r.startswith(("llm_", "fact_changed:")) for r in reasons)
    assert any(
        r in known or r.startswith("fact_changed:") for r in reasons
    )  # structured output parsed, and the preservation check judged it
    for s in table_to_samples(res.kept):
        assert s.provenance.model == stage.engine_config.model and s.provenance.sampling_seed is not None
    again = llm_paraphrase_table(table, stage, core_lexicon, modes=("patient_question", "plain_answer"))
    assert again.rejected.to_pylist() == res.rejected.to_pylist()
    assert again.kept.column("id").to_pylist() == res.kept.column("id").to_pylist()


def test_llm_negatives_end_to_end(stage, samples):
    table = samples_to_table(samples)
    ratios = dict.fromkeys(ERROR_PROMPTS, 1.0)
    res = llm_negatives_table(table, stage, ratios, seed=2)
    assert res.kept.num_rows + res.rejected.num_rows == 3 * len(ERROR_PROMPTS)
    for s in table_to_samples(res.kept):
        assert s.label == "negative" and s.reference_output and s.reference_output != s.output
    reasons = {r.split(":", 1)[1] for r in res.rejected.column("reason").to_pylist()}
    assert reasons - {"error_not_injected", "unchanged", "empty"} <= {
        r
        for r in reasons
        if r.startswith(("llm_", "not_wrong:"))  # not_wrong: the shared verifier's drop
    }
    assert res.stats.extra.get("llm_negative_rejected_error_not_injected", 0) + res.kept.num_rows > 0
    half = llm_negatives_table(table, stage, dict.fromkeys(ERROR_PROMPTS, 0.5), seed=2)
    assert half.kept.num_rows + half.rejected.num_rows < 18


def test_augment_table_runs_llm_augmenters_with_the_stage(stage, samples):
    from augmenters.pipeline import AugmentConfig, augment_table

    cfg = AugmentConfig(
        paraphrase=False,
        negative_ratios={},
        llm_paraphrase_modes=("clinical_answer",),
        llm_negative_ratios={ErrorType.overclaiming: 1.0},
    )
    res = augment_table(samples_to_table(samples), cfg, llm_stage=stage)
    derived = res.kept.num_rows - 3
    assert derived + res.rejected.num_rows == 3 + 3
    assert sum(res.stats.rejects.values()) == res.rejected.num_rows
    assert res.kept.column("id").to_pylist()[:3] == [s.id for s in samples]
