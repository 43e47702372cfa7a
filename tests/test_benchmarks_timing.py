"""The timing toolkit's logic, on fake clocks and callables (no timed assertions), and model_speed on a tiny net."""

from __future__ import annotations

import itertools
import math
import re

import pytest

from efficientnet_tpu.benchmarks import timing
from efficientnet_tpu.benchmarks.timing import Speedup, Timing


def _clock(ticks):
    """A fake clock returning the given readings in order."""
    readings = iter(ticks)
    return lambda: next(readings)


def test_time_call_reads_each_clock_before_and_after():
    calls = []
    result = timing.time_call(lambda: calls.append(1), wall_clock=_clock([10.0, 12.5]),
                              cpu_clock=_clock([1.0, 4.0]))
    assert calls == [1] and result == Timing(2.5, 3.0)


def test_stopwatch_measures_from_the_last_start():
    stopwatch = timing.Stopwatch(_clock([0.0, 5.0, 7.0, 9.0]), _clock([0.0, 1.0, 2.0, 2.5]))
    stopwatch.start()
    assert stopwatch.elapsed() == Timing(5.0, 1.0)
    stopwatch.start()
    assert stopwatch.elapsed() == Timing(2.0, 0.5)


def test_median_timing_skips_warmup_and_takes_separate_medians():
    calls = []
    # Three timed calls: wall durations 1, 5, 2 and CPU durations 4, 1, 3.
    wall = _clock([0, 1, 10, 15, 20, 22])
    cpu = _clock([0, 4, 10, 11, 20, 23])
    result = timing.median_timing(lambda: calls.append(1), calls=3, warmup=2, wall_clock=wall, cpu_clock=cpu)
    assert len(calls) == 5  # two untimed warm-up calls, then three timed ones
    assert result == Timing(2, 3)


def test_median_timing_rejects_no_calls():
    with pytest.raises(ValueError, match="calls >= 1"):
        timing.median_timing(lambda: None, calls=0)


def test_timing_per_divides_both_clocks():
    assert Timing(3.0, 1.5).per(3) == Timing(1.0, 0.5)


def test_rotated_lets_each_contender_lead_in_turn():
    names = ["a", "b", "c"]
    assert [timing.rotated(names, i) for i in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]
    assert timing.rotated([], 3) == []


def test_alternating_rounds_rotates_order_and_keeps_results_in_order():
    order = []
    counter = itertools.count()

    def measure(name):
        def run():
            order.append(name)
            return next(counter)
        return run

    seen = []
    results = timing.alternating_rounds({"x": measure("x"), "y": measure("y")}, rounds=3,
                                        on_round=lambda index, values: seen.append((index, values)))
    assert order == ["x", "y", "y", "x", "x", "y"]
    assert results == {"x": [0, 3, 4], "y": [1, 2, 5]}
    assert list(results) == ["x", "y"]
    assert seen == [(0, {"x": 0, "y": 1}), (1, {"x": 3, "y": 2}), (2, {"x": 4, "y": 5})]
    with pytest.raises(ValueError, match="rounds >= 1"):
        timing.alternating_rounds({"x": measure("x")}, rounds=0)


def test_median_ratio_pairs_values_from_the_same_round():
    # Unpaired medians would give 2/2 = 1; the same-round ratios are 1/4, 2/2 and 4/1, median 1,
    # and here 1/2, 2/4, 4/1: median 0.5 where the ratio of medians says 1.
    assert timing.median_ratio([1, 2, 4], [2, 4, 1]) == 0.5
    with pytest.raises(ValueError, match="equally long"):
        timing.median_ratio([1, 2], [1])


def test_speedups_are_reference_time_over_own_time():
    series = {"ref": [Timing(2, 4), Timing(4, 4), Timing(3, 6)],
              "fast": [Timing(1, 1), Timing(1, 2), Timing(3, 3)]}
    result = timing.speedups(series, "ref")
    assert result["ref"] == Speedup(1.0, 1.0)
    assert result["fast"] == Speedup(2.0, 2.0)


def test_machine_description_names_cores_and_model():
    assert re.fullmatch(r"\d+ cores, .+", timing.machine_description())


def test_timing_imports_no_tensorflow():
    # Loaded by path: the package's __init__ imports the model (Keras, so TensorFlow); the module must not.
    import subprocess
    import sys

    code = ("import importlib.util, sys; "
            f"spec = importlib.util.spec_from_file_location('timing', {timing.__file__!r}); "
            "module = sys.modules['timing'] = importlib.util.module_from_spec(spec); "
            "spec.loader.exec_module(module); "
            "sys.exit(any(name.split('.')[0] in ('tensorflow', 'keras') for name in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def _tiny_model():
    import keras

    return keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3),
                             keras.layers.BatchNormalization(), keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(10)])


def test_model_speed_gives_positive_finite_numbers_for_a_tiny_model():
    from efficientnet_tpu.benchmarks import model_speed

    latency = model_speed.inference_latency(_tiny_model(), 2, 16, calls=2, warmup=1)
    assert math.isfinite(latency.wall_s) and latency.wall_s > 0 and latency.cpu_s >= 0
    fresh = _tiny_model()
    before = [w.numpy().copy() for w in fresh.trainable_weights]
    rate = model_speed.training_throughput(fresh, 2, 16, 10, steps=2, warmup=1)
    assert math.isfinite(rate) and rate > 0
    assert any((w.numpy() != b).any() for w, b in zip(fresh.trainable_weights, before))  # it really trained
