"""`python -m efficientnet_tpu.summary`: a network's stage table, size and cost.

    python -m efficientnet_tpu.summary --variant=b0 [--phi=1.5] [--num_classes=10] [--format=table|json]
    python -m efficientnet_tpu.summary --all [--format=table|json|markdown]

The stage table has the form of the paper's Table 1 and is derived from the
resolved spec, the same data the builder reads.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Sequence

from absl import flags

from efficientnet_tpu import exit_codes
from efficientnet_tpu.cli import common
from efficientnet_tpu.storage import json_text

if __name__ == "__main__":
    # As a program: TensorFlow (under Keras) starts without its start-up lines, as in train.
    from efficientnet_tpu.tf_startup import import_tensorflow

    import_tensorflow()

from efficientnet_tpu.model import build_from_spec, count_macs, get_spec, list_variants, resolve_blocks
from efficientnet_tpu.model.blocks import block_class
from efficientnet_tpu.model.specs import BlockSpec, ModelSpec

FLAGS = flags.FLAGS

NAMES = ("variant", "phi", "num_classes", "format", "all")


def define_flags() -> None:
    """The summary flags: defined on the command-line path only, never at import, so importing
    this module next to another CLI (the trainer has its own float-or-empty --phi) changes nothing."""
    if not common.to_define(__name__, NAMES):
        return
    flags.DEFINE_string("variant", "b0", "Variant name; see --all for the list.")
    flags.DEFINE_float("phi", None, "Compound-scaling coefficient (b0 and the b0-based study variants).")
    flags.DEFINE_integer("num_classes", 1000, "Classifier width.")
    flags.DEFINE_enum("format", "table", ["table", "json", "markdown"], "Output format.")
    flags.DEFINE_bool("all", False, "Summarize every registered variant instead of one.")


@dataclass(frozen=True)
class StageRow:
    stage: int
    operator: str
    resolution: tuple[int, int]
    channels: int
    layers: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "operator": self.operator,
            "resolution": list(self.resolution),
            "channels": self.channels,
            "layers": self.layers,
        }


def _operator(block: BlockSpec) -> str:
    """The block class's Table-1 label for this block, plus its stride when it reduces."""
    text = block_class(block.block).label.format(expand=block.expand_ratio, kernel=block.kernel_size)
    if block.stride == 2:
        text += ", stride 2"
    return text


def stage_table(spec: ModelSpec, input_hw: tuple[int, int] | None = None) -> list[StageRow]:
    """Table 1 for any EfficientNet-family spec: stem, one row per block stage, head."""
    if spec.family != "efficientnet":
        return []
    height, width = input_hw or (spec.resolution, spec.resolution)
    rows = [StageRow(1, "Conv3x3, stride 2", (height, width), spec.stem_out, 1)]
    height, width = math.ceil(height / 2), math.ceil(width / 2)
    blocks = resolve_blocks(spec)
    for stage, group in itertools.groupby(blocks, key=lambda b: b.stage):
        group = list(group)
        rows.append(StageRow(stage, _operator(group[0]), (height, width), group[-1].out_channels, len(group)))
        for block in group:
            height, width = math.ceil(height / block.stride), math.ceil(width / block.stride)
    last = (blocks[-1].stage if blocks else 1) + 1
    rows.append(StageRow(last, "Conv1x1, pooling, FC", (height, width), spec.head_out, 1))
    return rows


def describe(variant: str, phi: float | None = None, num_classes: int = 1000) -> dict[str, Any]:
    """Everything the summary prints for one named network, as plain data."""
    return describe_spec(get_spec(variant, phi), num_classes)


def describe_spec(spec: ModelSpec, num_classes: int = 1000) -> dict[str, Any]:
    """The summary of any spec (a registered variant or one built by hand): phi, size, cost, Table 1."""
    model = build_from_spec(spec, num_classes=num_classes)
    params = int(sum(math.prod(w.shape) for w in model.trainable_weights))
    return {
        "variant": spec.name,
        "phi": spec.phi,
        "resolution": spec.resolution,
        "params": params,
        "macs": count_macs(model),
        "stages": [row.as_dict() for row in stage_table(spec)],
    }


def format_table(summary: dict[str, Any]) -> str:
    lines = [f"{summary['variant']}" + (f" (phi={summary['phi']:g})" if summary["phi"] is not None else "")]
    if summary["stages"]:
        header = ("stage", "operator", "resolution", "channels", "layers")
        rows = [
            (str(r["stage"]), r["operator"], "x".join(map(str, r["resolution"])), str(r["channels"]), str(r["layers"]))
            for r in summary["stages"]
        ]
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)
    lines.append(f"resolution: {summary['resolution']}x{summary['resolution']}")
    lines.append(f"trainable parameters: {summary['params']:,}")
    lines.append(f"MACs: {summary['macs']:,} ({summary['macs'] / 1e9:.3f} G)")
    return "\n".join(lines)


def summarize_all(num_classes: int = 1000) -> list[dict[str, Any]]:
    """One row per registered variant, with parameters and MACs relative to B0."""
    rows = []
    for name in list_variants():
        spec = get_spec(name)
        model = build_from_spec(spec, num_classes=num_classes)
        rows.append(
            {
                "variant": name,
                "resolution": spec.resolution,
                "params": int(sum(math.prod(w.shape) for w in model.trainable_weights)),
                "macs": count_macs(model),
            }
        )
    base = next(r for r in rows if r["variant"] == "b0")
    for row in rows:
        row["params_vs_b0"] = row["params"] / base["params"]
        row["macs_vs_b0"] = row["macs"] / base["macs"]
    return rows


def format_all(rows: Sequence[dict[str, Any]], markdown: bool) -> str:
    header = ("variant", "resolution", "parameters", "MACs (G)", "params / B0", "MACs / B0")
    cells = [
        (
            f"`{r['variant']}`" if markdown else r["variant"],
            str(r["resolution"]),
            f"{r['params']:,}",
            f"{r['macs'] / 1e9:.3f}",
            f"{r['params_vs_b0']:.2f}",
            f"{r['macs_vs_b0']:.2f}",
        )
        for r in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def execute() -> int:
    """Prints the summary the parsed flags ask for; returns the exit status."""
    try:
        if FLAGS.all:
            rows = summarize_all(FLAGS.num_classes)
            text = json_text(rows, indent=2).rstrip() if FLAGS.format == "json" else format_all(
                rows, markdown=FLAGS.format == "markdown"
            )
        else:
            summary = describe(FLAGS.variant, FLAGS.phi, FLAGS.num_classes)
            text = json_text(summary, indent=2).rstrip() if FLAGS.format == "json" else format_table(summary)
    except ValueError as error:
        return exit_codes.fail(exit_codes.one_line(error), exit_codes.USAGE)
    print(text)
    return exit_codes.OK


def main_cli(argv: Sequence[str]) -> int:
    """Parses ``argv`` (program name first) and prints; for tests and scripts in one process."""
    return common.run_in_process(argv, define_flags, execute)


def main() -> None:
    """``python -m efficientnet_tpu.summary`` (the shim efficientnet_tpu/summary.py)."""
    common.main(define_flags, execute)


if __name__ == "__main__":
    main()
