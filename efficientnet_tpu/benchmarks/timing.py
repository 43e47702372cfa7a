"""Wall and CPU time, medians and alternating rounds: what every benchmark here shares.

A shared machine's load drifts, so contenders are timed in rounds whose order
rotates, compared by ratios taken within the same round, and summarised by
medians. Beside wall time this records the CPU time of the whole process (all
its threads): neighbours inflate wall time far more than they change the work
our threads do, so the two together separate the code from the load.
Imports no TensorFlow, so studies and tests can use it cheaply.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence, TypeVar

Clock = Callable[[], float]
T = TypeVar("T")


def machine_description() -> str:
    """`N cores, MODEL`: the core count and the CPU model name from /proc/cpuinfo where there is one."""
    model = platform.processor() or platform.machine() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


@dataclass(frozen=True)
class Timing:
    """Seconds of wall-clock time and of this process's CPU time (all threads)."""

    wall_s: float
    cpu_s: float

    def per(self, count: float) -> "Timing":
        """This timing divided over `count` steps, images or calls."""
        return Timing(self.wall_s / count, self.cpu_s / count)


class Stopwatch:
    """Wall and process-CPU clocks read at `start` and again at `elapsed`.

    For code that cannot be wrapped in one call, such as a callback timing
    what happens between two hooks.
    """

    def __init__(self, wall_clock: Clock = time.perf_counter, cpu_clock: Clock = time.process_time):
        self._clocks = (wall_clock, cpu_clock)
        self._start = (0.0, 0.0)

    def start(self) -> None:
        self._start = (self._clocks[0](), self._clocks[1]())

    def elapsed(self) -> Timing:
        """Seconds since the last `start`."""
        return Timing(self._clocks[0]() - self._start[0], self._clocks[1]() - self._start[1])


def time_call(fn: Callable[[], object], *, wall_clock: Clock = time.perf_counter,
              cpu_clock: Clock = time.process_time) -> Timing:
    """Wall and process-CPU seconds of one call of `fn`."""
    stopwatch = Stopwatch(wall_clock, cpu_clock)
    stopwatch.start()
    fn()
    return stopwatch.elapsed()


def median(timings: Sequence[Timing]) -> Timing:
    """The median wall time and, separately, the median CPU time."""
    if not timings:
        raise ValueError("median of no timings")
    return Timing(statistics.median(t.wall_s for t in timings), statistics.median(t.cpu_s for t in timings))


def median_timing(fn: Callable[[], object], calls: int, warmup: int = 1, *,
                  wall_clock: Clock = time.perf_counter, cpu_clock: Clock = time.process_time) -> Timing:
    """Median wall and process-CPU seconds per call of `fn` over `calls` calls, after `warmup` untimed ones.

    `fn` must wait for its own result (e.g. call `.numpy()`), or this times
    only the dispatch.
    """
    if calls < 1 or warmup < 0:
        raise ValueError(f"need calls >= 1 and warmup >= 0, got calls={calls}, warmup={warmup}")
    for _ in range(warmup):
        fn()
    return median([time_call(fn, wall_clock=wall_clock, cpu_clock=cpu_clock) for _ in range(calls)])


def rotated(names: Sequence[T], round_index: int) -> list[T]:
    """`names` rotated left by `round_index`: each contender leads in turn, so none is always first."""
    if not names:
        return []
    shift = round_index % len(names)
    return [*names[shift:], *names[:shift]]


def alternating_rounds(measures: Mapping[str, Callable[[], T]], rounds: int,
                       on_round: Callable[[int, dict[str, T]], None] | None = None) -> dict[str, list[T]]:
    """Calls every measure once per round, in an order rotated each round; one result per measure per round.

    The results keep `measures`' order. `on_round(round_index, this_round)`
    sees each finished round (for progress lines). Warm-up is the caller's:
    trace and compile before the first round.
    """
    if rounds < 1:
        raise ValueError(f"need rounds >= 1, got {rounds}")
    names = list(measures)
    results: dict[str, list[T]] = {name: [] for name in names}
    for round_index in range(rounds):
        this_round = {}
        for name in rotated(names, round_index):
            this_round[name] = measures[name]()
        for name in names:
            results[name].append(this_round[name])
        if on_round is not None:
            on_round(round_index, {name: this_round[name] for name in names})
    return results


def median_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median over rounds of numerator / denominator, both from the same round.

    Pairing within a round cancels load that hits both sides of that round
    alike; the median drops the rounds a burst of load hit unevenly.
    """
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError(f"need two equally long, non-empty series, got {len(numerators)} and {len(denominators)}")
    return statistics.median(top / bottom for top, bottom in zip(numerators, denominators))


@dataclass(frozen=True)
class Speedup:
    """Reference time / a contender's time, by wall and by CPU time: above 1 means faster."""

    wall: float
    cpu: float


def speedups(series: Mapping[str, Sequence[Timing]], reference: str) -> dict[str, Speedup]:
    """Each contender's speedup over `reference`, as medians of same-round ratios (see `median_ratio`).

    `series` holds one Timing per round for every contender, `reference` included.
    """
    base = series[reference]
    return {
        name: Speedup(median_ratio([t.wall_s for t in base], [t.wall_s for t in own]),
                      median_ratio([t.cpu_s for t in base], [t.cpu_s for t in own]))
        for name, own in series.items()
    }
