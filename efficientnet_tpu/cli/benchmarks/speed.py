"""CPU inference speed of the study variants against B0, measured in one process.

    python -m efficientnet_tpu.benchmarks.speed [--variants=b0,b0_lite,...] [--rounds=7]
        [--latency_calls=10] [--throughput_calls=3] [--batch_size=32] [--json=PATH]

Seed 000 claims EfficientNet-lite0 and its compact version run about 2x
faster than B0, and compact about 10% faster than lite; this measures it.
Each network runs as a compiled TensorFlow graph (`tf.function`, no XLA) at
its own resolution, at batch 1 (latency) and at `--batch_size` (throughput),
in rotated alternating rounds (see `timing`). Every round yields each
network's median time per call and its ratio to B0 in that same round; the
report gives medians over rounds, by wall clock and by process CPU time. A
ratio above 1 means faster than B0.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from absl import flags

from efficientnet_tpu.cli import common
from efficientnet_tpu.storage import write_json
from efficientnet_tpu.benchmarks.timing import Timing, alternating_rounds, machine_description, median, \
    median_timing, speedups

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


def measure(
    variants: Sequence[str],
    *,
    rounds: int,
    latency_calls: int,
    throughput_calls: int,
    batch_size: int,
    log: Callable[[str], None] = lambda message: None,
) -> list[SpeedRow]:
    """Builds every variant (B0 added first if missing), then times them in `rounds` alternating rounds."""
    import numpy as np

    from efficientnet_tpu import build_model, count_macs, get_spec
    from efficientnet_tpu.benchmarks.model_speed import compiled_forward

    if REFERENCE not in variants:
        variants = [REFERENCE, *variants]
    measures: dict[str, Callable[[], tuple[Timing, Timing]]] = {}
    facts: dict[str, tuple[int, int, int]] = {}
    for name in variants:
        resolution = get_spec(name).resolution
        model = build_model(name)
        params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        facts[name] = (resolution, params, count_macs(model))
        single = compiled_forward(model, 1, resolution)
        batched = compiled_forward(model, batch_size, resolution)
        single(), single(), batched()  # trace and warm up outside the timed rounds

        def one_round(single=single, batched=batched) -> tuple[Timing, Timing]:
            return (median_timing(single, latency_calls, warmup=0),
                    median_timing(batched, throughput_calls, warmup=0))

        measures[name] = one_round
        log(f"built {name}: {params:,} parameters, {facts[name][2] / 1e9:.3f} G MACs at {resolution}px")

    series = alternating_rounds(measures, rounds, on_round=lambda index, results: log(
        f"round {index + 1}/{rounds}: "
        + ", ".join(f"{name} {latency.wall_s * 1e3:.1f} ms" for name, (latency, _) in results.items())))
    latency = {name: [single for single, _ in values] for name, values in series.items()}
    per_batch = {name: [batched for _, batched in values] for name, values in series.items()}
    latency_speedup, batch_speedup = speedups(latency, REFERENCE), speedups(per_batch, REFERENCE)

    rows = []
    for name in variants:
        resolution, params, macs = facts[name]
        single, batched = median(latency[name]), median(per_batch[name])
        rows.append(SpeedRow(
            variant=name,
            resolution=resolution,
            params=params,
            macs=macs,
            latency_ms=single.wall_s * 1e3,
            latency_speedup=latency_speedup[name].wall,
            latency_cpu_ms=single.cpu_s * 1e3,
            latency_cpu_speedup=latency_speedup[name].cpu,
            throughput=batch_size / batched.wall_s,
            throughput_speedup=batch_speedup[name].wall,
            throughput_cpu_ms=batched.cpu_s * 1e3 / batch_size,
            throughput_cpu_speedup=batch_speedup[name].cpu,
        ))
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


def _define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("variants", ",".join(DEFAULT_VARIANTS), "Comma-separated variant names.",
                        flag_values=values)
    common.positive_int(values, "rounds", 7, "Alternating measurement rounds.")
    common.positive_int(values, "latency_calls", 10, "Batch-1 calls per network per round.")
    common.positive_int(values, "throughput_calls", 3, "Big-batch calls per network per round.")
    common.positive_int(values, "batch_size", 32, "Images per throughput call.")
    flags.DEFINE_string("json", None, "Also write the results to this JSON file.", flag_values=values)


def _run(values: flags.FlagValues) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from efficientnet_tpu import list_variants

    variants = [name.strip() for name in values.variants.split(",") if name.strip()]
    unknown = [name for name in variants if name not in list_variants()]
    if unknown or not variants:
        raise common.UsageError(f"--variants: unknown variant(s) {', '.join(unknown) or '(none given)'}; "
                             f"valid: {', '.join(list_variants())}")
    if values.json and not os.path.isdir(os.path.dirname(os.path.abspath(values.json))):
        raise common.UsageError(f"--json={values.json}: its folder does not exist; create it or pick another path")

    import tensorflow as tf

    load_before = os.getloadavg()
    rows = measure(variants, rounds=values.rounds, latency_calls=values.latency_calls,
                   throughput_calls=values.throughput_calls, batch_size=values.batch_size,
                   log=lambda message: print(message, file=sys.stderr, flush=True))
    load_after = os.getloadavg()
    machine = (f"{machine_description()}; TensorFlow {tf.__version__}; load average {load_before[0]:.1f} "
               f"before, {load_after[0]:.1f} after")
    print(f"Machine: {machine}")
    print(markdown_table(rows, values.batch_size))
    if values.json:
        arguments = {name: values[name].value for name in
                     ("variants", "rounds", "latency_calls", "throughput_calls", "batch_size")}
        write_json(values.json, {"machine": machine, "args": arguments, "rows": [asdict(row) for row in rows]},
                   indent=2)


def main(argv: Sequence[str] | None = None) -> int:
    return common.run_cli(__doc__, _define_flags, _run, argv)


if __name__ == "__main__":
    sys.exit(main())
