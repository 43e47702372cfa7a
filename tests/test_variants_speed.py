"""The speed study's plumbing (no timing is asserted: the figures live in BENCHMARKS.md)."""

from __future__ import annotations

import pytest

from efficientnet_tpu.experiments import speed


def test_measure_reports_every_variant_against_b0():
    rows = speed.measure(["b0_compact"], rounds=1, latency_calls=1, throughput_calls=1, batch_size=2)
    assert [row.variant for row in rows] == ["b0", "b0_compact"]  # the reference is always added
    reference, compact = rows
    assert reference.latency_speedup == reference.throughput_speedup == 1.0
    assert compact.params == 4_650_584 and compact.resolution == 224
    assert compact.latency_ms > 0 and compact.throughput > 0 and compact.throughput_cpu_ms >= 0
    table = speed.markdown_table(rows, batch_size=2).splitlines()
    assert len(table) == 4 and table[3].startswith("| b0_compact | 224 | 4.65M | 0.362 |")


def test_bad_arguments_end_with_one_line(capsys):
    assert speed.main(["--variants", "b0,b9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown variant(s) b9" in err[0]
    with pytest.raises(SystemExit) as stop:
        speed.main(["--rounds", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "positive integer" in err[0]
