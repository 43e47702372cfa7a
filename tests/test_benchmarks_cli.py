"""The benchmark command-line tools: one flag convention, one-line errors, their reports (no timing asserted).

The measured figures live in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sys

import pytest
from absl import flags

from efficientnet_tpu import exit_codes
from efficientnet_tpu.cli.benchmarks import data, keras_compare, speed, training
from helpers import tiny_convnet

CLIS = (data, keras_compare, speed, training)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_clis_define_no_global_flags_and_can_run_in_one_process(capsys):
    before = set(flags.FLAGS)
    for cli in CLIS:  # all imported together, each run twice: nothing clashes or is reused
        assert cli.main(["--help"]) == exit_codes.OK
        assert cli.main(["--help"]) == exit_codes.OK
        assert "--rounds" in capsys.readouterr().out
    assert set(flags.FLAGS) == before


@pytest.mark.parametrize("cli", CLIS, ids=lambda module: module.__name__.rsplit(".", 1)[1])
def test_bad_flags_end_with_one_usage_line(cli, capsys):
    assert cli.main(["--rounds=0"]) == exit_codes.USAGE
    assert "--rounds=0: 0 is not a positive integer" in _one_error_line(capsys)
    assert cli.main(["--no_such_flag"]) == exit_codes.USAGE
    assert "Unknown command line flag 'no_such_flag'" in _one_error_line(capsys)
    assert cli.main(["stray"]) == exit_codes.USAGE
    assert "unexpected argument(s) stray" in _one_error_line(capsys)


def test_a_bug_is_one_line_and_a_traceback_file(capsys):
    from efficientnet_tpu.cli import common as cli

    def broken(values):
        raise RuntimeError("boom")

    assert cli.run_cli("doc", lambda values: None, broken, []) == exit_codes.INTERNAL
    line = _one_error_line(capsys)
    assert line.startswith("error: boom (a bug; traceback in ")
    with open(line.rsplit(" ", 1)[1].rstrip(")"), encoding="utf-8") as handle:
        assert "RuntimeError: boom" in handle.read()


def test_speed_rejects_unknown_variants_and_missing_json_folder(tmp_path, capsys):
    assert speed.main(["--variants=b0,b9"]) == exit_codes.USAGE
    assert "unknown variant(s) b9" in _one_error_line(capsys)
    assert speed.main([f"--json={tmp_path}/no/such/dir/out.json"]) == exit_codes.USAGE
    assert "its folder does not exist" in _one_error_line(capsys)


def test_speed_measures_every_variant_against_b0():
    rows = speed.measure(["b0_compact"], rounds=1, latency_calls=1, throughput_calls=1, batch_size=2)
    assert [row.variant for row in rows] == ["b0", "b0_compact"]  # the reference is always added
    reference, compact = rows
    assert reference.latency_speedup == reference.throughput_speedup == 1.0
    assert compact.params == 4_650_584 and compact.resolution == 224
    assert compact.latency_ms > 0 and compact.throughput > 0 and compact.throughput_cpu_ms >= 0
    table = speed.markdown_table(rows, batch_size=2).splitlines()
    assert len(table) == 4 and table[3].startswith("| b0_compact | 224 | 4.65M | 0.362 |")


def test_speed_writes_json(tmp_path, monkeypatch, capsys):
    def fake_measure(variants, **kwargs):
        return [speed.SpeedRow("b0", 224, 1, 2, 3.0, 1.0, 4.0, 1.0, 5.0, 1.0, 6.0, 1.0)]

    monkeypatch.setattr(speed, "measure", fake_measure)
    out = tmp_path / "speed.json"
    assert speed.main(["--variants=b0", "--rounds=2", f"--json={out}"]) == exit_codes.OK
    record = json.loads(out.read_text())
    assert record["args"]["rounds"] == 2 and record["rows"][0]["variant"] == "b0"
    assert record["machine"].split(";")[0] in capsys.readouterr().out


def test_data_reports_pipeline_and_ceilings(tmp_path, capsys):
    assert data.main(["--num_images=8", "--image_size=32", "--batch_size=4", "--steps=2", "--rounds=1",
                      "--policies=randaugment", f"--work_dir={tmp_path}"]) == exit_codes.OK
    output = capsys.readouterr().out
    assert "machine: " in output and "8 JPEGs 500x375" in output
    assert "round 1: pipeline " in output
    assert "pipeline / bare decode+resize: " in output
    assert "pipeline / bare crop+resize: " in output
    for semantics in ("reference", "paper"):
        assert f"randaugment/{semantics} / crop+flip: " in output
    assert "randaugment reference / paper semantics: " in output and "autoaugment/" not in output
    assert data.main([f"--work_dir={tmp_path}/missing"]) == exit_codes.USAGE
    assert "is not a folder" in _one_error_line(capsys)
    assert data.main(["--policies=mixup"]) == exit_codes.USAGE
    assert "--policies" in _one_error_line(capsys)


def test_keras_compare_needs_a_keras_twin(capsys):
    assert keras_compare.main(["--variant=b0_lite"]) == exit_codes.USAGE
    assert "needs a variant with a Keras Applications twin" in _one_error_line(capsys)


def test_keras_compare_alternate_warms_up_then_times_steps_per_round():
    calls = {"a": 0, "b": 0}

    def step(name):
        return lambda: calls.__setitem__(name, calls[name] + 1)

    series = keras_compare.alternate({"a": step("a"), "b": step("b")}, rounds=3, steps=4)
    assert calls == {"a": 1 + 3 * 4, "b": 1 + 3 * 4}  # one warm-up step, then 4 steps in each of 3 rounds
    assert [len(values) for values in series.values()] == [3, 3]


def _tiny(*args, input_shape=(16, 16, 3), **kwargs):
    return tiny_convnet(input_shape, 1000, strides=2, batch_norm=False)


def test_keras_compare_reports_both_tasks(monkeypatch, capsys):
    # Tiny stand-ins for both networks: this checks the tool's plumbing; tracing two B0s takes minutes.
    import keras

    import efficientnet_tpu.model

    monkeypatch.setattr(efficientnet_tpu.model, "build_model", _tiny)
    monkeypatch.setattr(keras.applications, "EfficientNetB0", _tiny)
    assert keras_compare.main(["--resolution=16", "--batch_size=2", "--inference_batch_size=2", "--rounds=2",
                               "--steps=1"]) == exit_codes.OK
    output = capsys.readouterr().out
    assert "b0 at 16px: training batch 2, inference batch 2, 2 rounds x 1 steps" in output
    assert "training : ours " in output and "inference: ours " in output and "ratio ours/keras" in output


@pytest.mark.slow
def test_training_steps_per_loop_series_has_one_entry_per_round():
    series = training.steps_per_loop_effect(2, 32, "b0", -6.0, rounds=2)
    assert set(series) == {"steps_per_loop=1", "steps_per_loop=10"}
    assert all(len(values) == 2 and all(t.wall_s > 0 for t in values) for values in series.values())


def test_run_as_a_module_exits_with_the_status():
    import subprocess

    result = subprocess.run([sys.executable, "-m", "efficientnet_tpu.benchmarks.data", "--rounds=0"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == exit_codes.USAGE
    assert [line for line in result.stderr.splitlines() if line.startswith("error: ")] == [
        "error: flag --rounds=0: 0 is not a positive integer (--help lists the flags)"]
