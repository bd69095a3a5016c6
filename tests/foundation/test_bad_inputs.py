"""Bad inputs to the generate job: clear errors, nothing already written is corrupted."""

from __future__ import annotations

from jobs.generate import main


def _run(path, capsys, *extra) -> tuple[int, str]:
    code = main(["--config", str(path), *extra])
    return code, capsys.readouterr().err


def test_broken_yaml(small_config, tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text("run:\n  seed: [1, 2\nquotas: {total: 3}\n", encoding="utf-8")
    code, err = _run(p, capsys)
    assert code == 2 and "c.yaml:" in err and "broken YAML" in err


def test_invalid_utf8_config(small_config, tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_bytes(b"run:\n  seed: \xff\n")
    code, err = _run(p, capsys)
    assert code == 2 and "not UTF-8" in err


def test_unknown_field_and_bad_value(small_config, tmp_path, capsys, write_config):
    cfg = small_config(tmp_path / "m", tmp_path)
    cfg["quotas"]["total"] = -1
    cfg["llm"]["output_mode"] = "xml"
    code, err = _run(write_config(cfg), capsys)
    assert code == 2 and "quotas.total" in err and "llm.output_mode" in err


def test_unknown_template_slot(small_config, tmp_path, capsys, write_config):
    t = tmp_path / "t.yaml"
    t.write_text(
        "templates:\n  - {id: x, task: medical_qa, areas: '*', system: s, user: '{nope}'}\n", encoding="utf-8"
    )
    cfg = small_config(tmp_path / "m", tmp_path)
    cfg["templates"] = str(t)
    code, err = _run(write_config(cfg), capsys)
    assert code == 2 and "template x: unknown slot" in err and "'nope'" in err


def test_unknown_model_path(small_config, tmp_path, capsys, write_config, ray_local):
    cfg = small_config(tmp_path / "no-such-model", tmp_path)
    cfg["llm"]["engine"]["model"] = "./no-such-model"
    code, err = _run(write_config(cfg), capsys, "--run-id", "r")
    assert code != 0 and "model path not found: ./no-such-model" in err
    assert not list((tmp_path / "r").glob("generate/shard-*.parquet"))


def test_unwritable_output_folder(small_config, tmp_path, capsys, write_config):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the run folder should go", encoding="utf-8")
    cfg = small_config(tmp_path / "m", blocker)
    code, err = _run(write_config(cfg), capsys, "--run-id", "r")
    assert code == 2 and "not writable" in err and "not-a-dir" in err
    assert blocker.read_text(encoding="utf-8").startswith("a file")
