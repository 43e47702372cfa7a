"""CPU inference speed of the study variants against B0, measured in one process.

    python -m efficientnet_tpu.experiments.speed [--variants b0,b0_lite,...] [--rounds 7]
        [--latency_calls 10] [--throughput_calls 3] [--batch_size 32] [--json PATH]

Seed 000 claims EfficientNet-lite0 and its compact version run about 2x
faster than B0, and compact about 10% faster than lite. This measures it:
each network runs as a compiled TensorFlow graph (`tf.function`, no XLA) at
its own resolution, at batch 1 (latency) and at `--batch_size` (throughput).
The networks alternate within every round, in a rotated order, so load from
other processes hits them alike; every round yields each network's median
time and its ratio to B0 in that same round, and the report gives the median
over rounds. A ratio above 1 means faster than B0. Beside wall-clock time it
records the CPU time the process spent (all its threads) per call: on a
machine shared with other work, that cost is far less disturbed by the load
than the wall clock, so the two together show what is the network and what is
the neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from efficientnet_tpu.machine import cpu_description

DEFAULT_VARIANTS = ("b0", "b0_lite", "b0_compact", "b0_fused", "v2_b0", "b0_meconv")
REFERENCE = "b0"


@dataclass(frozen=True)
class SpeedRow:
    variant: str
    resolution: int
    params: int
    macs: int
    latency_ms: float  # batch 1, wall clock, median over rounds
    latency_speedup: float  # b0 latency / this latency, median of same-round ratios
    latency_cpu_ms: float  # batch 1, process CPU time per call
    latency_cpu_speedup: float
    throughput: float  # images per second at the throughput batch size, wall clock
    throughput_speedup: float  # this throughput / b0 throughput, median of same-round ratios
    throughput_cpu_ms: float  # process CPU time per image at the throughput batch size
    throughput_cpu_speedup: float


def _compiled_forward(model, batch_size: int, resolution: int) -> Callable[[], None]:
    """A zero-argument callable running one graph-mode forward pass and waiting for its result."""
    import numpy as np
    import tensorflow as tf

    images = tf.constant(
        np.random.default_rng(0).uniform(0, 255, (batch_size, resolution, resolution, 3)).astype("float32")
    )
    forward = tf.function(lambda x: model(x, training=False), jit_compile=False)

    def run() -> None:
        forward(images).numpy()  # .numpy() blocks until the graph has finished

    return run


def _median_seconds(run: Callable[[], None], calls: int) -> tuple[float, float]:
    """Median wall-clock and process-CPU seconds of one call."""
    wall, cpu = [], []
    for _ in range(calls):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def _paired_speedup(reference: Sequence[float], mine: Sequence[float]) -> float:
    """Median over rounds of reference time / this time, both from the same round."""
    return statistics.median(ref / own for ref, own in zip(reference, mine))


def measure(
    variants: Sequence[str],
    *,
    rounds: int,
    latency_calls: int,
    throughput_calls: int,
    batch_size: int,
    log: Callable[[str], None] = lambda message: None,
) -> list[SpeedRow]:
    """Builds every variant, then times them in `rounds` alternating rounds (see module docstring)."""
    import numpy as np

    from efficientnet_tpu import build_model, count_macs, get_spec

    if REFERENCE not in variants:
        variants = [REFERENCE, *variants]
    runners: dict[str, tuple[Callable[[], None], Callable[[], None]]] = {}
    info: dict[str, tuple[int, int, int]] = {}
    for name in variants:
        spec = get_spec(name)
        model = build_model(name)
        params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        info[name] = (spec.resolution, params, count_macs(model))
        single = _compiled_forward(model, 1, spec.resolution)
        batched = _compiled_forward(model, batch_size, spec.resolution)
        single(), single(), batched()  # trace and warm up outside the timed rounds
        runners[name] = (single, batched)
        log(f"built {name}: {params:,} parameters, {info[name][2] / 1e9:.3f} G MACs at {spec.resolution}px")

    # (wall, cpu) series per variant, one entry per round.
    latency: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    per_batch: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for round_index in range(rounds):
        shift = round_index % len(variants)
        for name in [*variants[shift:], *variants[:shift]]:
            single, batched = runners[name]
            latency[name].append(_median_seconds(single, latency_calls))
            per_batch[name].append(_median_seconds(batched, throughput_calls))
        log(
            f"round {round_index + 1}/{rounds}: "
            + ", ".join(f"{n} {latency[n][-1][0] * 1e3:.1f} ms" for n in variants)
        )

    def series(table: dict[str, list[tuple[float, float]]], name: str, which: int) -> list[float]:
        return [entry[which] for entry in table[name]]

    rows = []
    for name in variants:
        resolution, params, macs = info[name]
        wall_1, cpu_1 = series(latency, name, 0), series(latency, name, 1)
        wall_b, cpu_b = series(per_batch, name, 0), series(per_batch, name, 1)
        rows.append(
            SpeedRow(
                variant=name,
                resolution=resolution,
                params=params,
                macs=macs,
                latency_ms=statistics.median(wall_1) * 1e3,
                latency_speedup=_paired_speedup(series(latency, REFERENCE, 0), wall_1),
                latency_cpu_ms=statistics.median(cpu_1) * 1e3,
                latency_cpu_speedup=_paired_speedup(series(latency, REFERENCE, 1), cpu_1),
                throughput=batch_size / statistics.median(wall_b),
                throughput_speedup=_paired_speedup(series(per_batch, REFERENCE, 0), wall_b),
                throughput_cpu_ms=statistics.median(cpu_b) * 1e3 / batch_size,
                throughput_cpu_speedup=_paired_speedup(series(per_batch, REFERENCE, 1), cpu_b),
            )
        )
    return rows


def markdown_table(rows: Sequence[SpeedRow], batch_size: int) -> str:
    lines = [
        f"| variant | res | params | G MACs | batch 1: ms | vs b0 | CPU ms | vs b0 | "
        f"batch {batch_size}: img/s | vs b0 | CPU ms/img | vs b0 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.variant} | {row.resolution} | {row.params / 1e6:.2f}M | {row.macs / 1e9:.3f} | "
            f"{row.latency_ms:.1f} | {row.latency_speedup:.2f}x | "
            f"{row.latency_cpu_ms:.1f} | {row.latency_cpu_speedup:.2f}x | "
            f"{row.throughput:.1f} | {row.throughput_speedup:.2f}x | "
            f"{row.throughput_cpu_ms:.1f} | {row.throughput_cpu_speedup:.2f}x |"
        )
    return "\n".join(lines)


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, not usage plus a message
        print(f"speed: {message}", file=sys.stderr)
        sys.exit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = _OneLineParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="comma-separated variant names")
    parser.add_argument("--rounds", type=_positive_int, default=7)
    parser.add_argument("--latency_calls", type=_positive_int, default=10, help="batch-1 calls per round")
    parser.add_argument("--throughput_calls", type=_positive_int, default=3, help="big-batch calls per round")
    parser.add_argument("--batch_size", type=_positive_int, default=32)
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from efficientnet_tpu import list_variants

    variants = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in variants if name not in list_variants()]
    if unknown or not variants:
        print(
            f"speed: unknown variant(s) {', '.join(unknown) or '(none given)'}; "
            f"valid: {', '.join(list_variants())}",
            file=sys.stderr,
        )
        return 2

    import tensorflow as tf

    load_before = os.getloadavg()
    rows = measure(
        variants,
        rounds=args.rounds,
        latency_calls=args.latency_calls,
        throughput_calls=args.throughput_calls,
        batch_size=args.batch_size,
        log=lambda message: print(message, file=sys.stderr, flush=True),
    )
    load_after = os.getloadavg()
    machine = (
        f"{cpu_description()}; TensorFlow {tf.__version__}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after"
    )
    print(f"Machine: {machine}")
    print(markdown_table(rows, args.batch_size))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "args": vars(args), "rows": [asdict(r) for r in rows]}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
