"""`medaug lexicon ...` through the real command line app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from medaug.cli import app

runner = CliRunner()


def test_normalize_stdin_to_stdout():
    r = runner.invoke(
        app, ["lexicon", "normalize", "-", "-"], input="胸口疼\n拉肚子两天，无胸痛\n烧到39.5\n\n38度多\n"
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["胸痛", "腹泻两天，无胸痛", "高热", "", "中等度热"]


def test_normalize_reverse_direction(tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("腹泻\n心悸伴胸闷\n", encoding="utf-8")
    dst = tmp_path / "out.txt"
    r = runner.invoke(app, ["lexicon", "normalize", str(src), str(dst), "--to", "colloquial"])
    assert r.exit_code == 0, r.output
    assert dst.read_text(encoding="utf-8").splitlines() == ["拉肚子", "心慌伴胸口闷"]


def test_normalize_jsonl_field_with_imcs_lexicon(tmp_path, shared_data):
    lex = tmp_path / "pairs.csv"
    lex.write_text("原始词\t标准词\n嗓子眼发痒\t咽喉不适\n", encoding="utf-8")
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"q": "嗓子眼发痒，拉肚子", "k": 1}, ensure_ascii=False)
        + "\n"
        + json.dumps({"q": "心慌"})
        + "\n",
        encoding="utf-8",
    )
    r = runner.invoke(
        app,
        [
            "lexicon",
            "normalize",
            str(src),
            "-",
            "--field",
            "q",
            "--lexicon",
            str(lex),
            "--lexicon",
            str(shared_data / "imcs21_symptom_norm" / "imcs_train.csv"),
        ],
    )
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in r.stdout.splitlines()]
    assert recs == [{"q": "咽喉不适，腹泻", "k": 1}, {"q": "心悸"}]


def test_bad_jsonl_line_is_named(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"q": "心慌"}\n{"q": \n', encoding="utf-8")
    r = runner.invoke(app, ["lexicon", "normalize", str(src), "-", "--field", "q"])
    assert r.exit_code == 2
    assert "in.jsonl:2: not valid JSON" in r.stderr
    r = runner.invoke(app, ["lexicon", "normalize", "-", "-", "--field", "x"], input='{"q": "心慌"}\n')
    assert r.exit_code == 2 and "-:1: field 'x' is missing" in r.stderr


def test_invalid_utf8_line_is_named():
    r = runner.invoke(app, ["lexicon", "normalize"], input=b"ok\n\xff\xfe\n")
    assert r.exit_code == 2 and "-:2: not valid UTF-8" in r.stderr


def test_stats_and_coverage(shared_data):
    r = runner.invoke(app, ["lexicon", "stats"])
    assert r.exit_code == 0 and json.loads(r.stdout)["entries"] >= 300
    dev = str(shared_data / "imcs21_symptom_norm" / "imcs_dev.csv")
    core = runner.invoke(app, ["lexicon", "coverage", dev])
    both = runner.invoke(
        app,
        [
            "lexicon",
            "coverage",
            dev,
            "--lexicon",
            str(shared_data / "imcs21_symptom_norm" / "imcs_train.csv"),
        ],
    )
    ratio = [float(x.stdout.split("coverage=")[1].split()[0]) for x in (core, both)]
    assert 0 < ratio[0] < ratio[1] <= 1


def test_augment_command_writes_originals_and_derived(tmp_path, samples):
    from medaug.io import read_samples, write_samples_jsonl

    src = tmp_path / "in.jsonl"
    write_samples_jsonl(samples, src)
    cfg = tmp_path / "aug.yaml"
    cfg.write_text("variants: 1\nnegative_ratios: {overclaiming: 1.0}\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    r = runner.invoke(app, ["augment-file", str(src), str(out), "--config", str(cfg), "--refusals", "2"])
    assert r.exit_code == 0, r.output
    got = read_samples(out)
    assert not got.errors
    labels = [s.label.value for s in got.samples]
    assert labels.count("negative") == 3 and labels.count("refusal") == 2 and labels.count("positive") == 6


def test_augment_command_names_bad_records_and_config(tmp_path, samples):
    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "问", "output": "答"}\n{"instruction": "问"}\n', encoding="utf-8")
    r = runner.invoke(app, ["augment-file", str(src), str(tmp_path / "o.parquet")])
    assert r.exit_code == 2 and "in.jsonl:2" in r.stderr and not (tmp_path / "o.parquet").exists()
    r = runner.invoke(app, ["augment-file", str(src), str(tmp_path / "o.parquet"), "--keep-going"])
    assert r.exit_code == 0 and (tmp_path / "o.parquet").exists()
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("negative_ratios: {wrong_dose: 2}\n", encoding="utf-8")
    r = runner.invoke(app, ["augment-file", str(src), str(tmp_path / "o.parquet"), "--config", str(cfg)])
    assert r.exit_code == 2 and "negative_ratios" in r.stderr and "wrong_dose ratio" in r.stderr


def test_missing_input_file_is_named(tmp_path):
    r = runner.invoke(app, ["lexicon", "normalize", str(tmp_path / "nope.txt"), "-"])
    assert r.exit_code == 2 and "nope.txt" in r.stderr
