"""The summary command: Table 1, JSON, and clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from efficientnet_tpu.summary import describe, format_table

TABLE_1 = [  # Table 1 of the EfficientNet paper (Tan & Le, 2019): (stage, operator, resolution, channels, layers)
    (1, "Conv3x3, stride 2", 224, 32, 1),
    (2, "MBConv1, k3x3", 112, 16, 1),
    (3, "MBConv6, k3x3, stride 2", 112, 24, 2),
    (4, "MBConv6, k5x5, stride 2", 56, 40, 2),
    (5, "MBConv6, k3x3, stride 2", 28, 80, 3),
    (6, "MBConv6, k5x5", 14, 112, 3),
    (7, "MBConv6, k5x5, stride 2", 14, 192, 4),
    (8, "MBConv6, k3x3", 7, 320, 1),
    (9, "Conv1x1, pooling, FC", 7, 1280, 1),
]


def test_b0_summary_reproduces_table_1():
    summary = describe("b0")
    rows = [
        (s["stage"], s["operator"], s["resolution"][0], s["channels"], s["layers"])
        for s in summary["stages"]
    ]
    assert rows == TABLE_1
    assert all(s["resolution"][0] == s["resolution"][1] for s in summary["stages"])
    assert (summary["resolution"], summary["params"]) == (224, 5_288_548)
    assert abs(summary["macs"] / 0.386e9 - 1) < 0.01
    text = format_table(summary)
    assert "MBConv6, k5x5" in text and "5,288,548" in text


def run_summary(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, "-m", "efficientnet_tpu.summary", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )


@pytest.mark.slow  # four interpreter starts, each importing TensorFlow
def test_command_line_json_and_errors():
    done = run_summary("--variant=b0", "--phi=1", "--num_classes=10", "--format=json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert set(summary) == {"variant", "phi", "resolution", "params", "macs", "stages"}
    assert summary["resolution"] == 256 and summary["phi"] == 1.0
    assert set(summary["stages"][0]) == {"stage", "operator", "resolution", "channels", "layers"}

    for args, message in (
        (["--variant=b9"], "Unknown variant 'b9'; valid choices: b0"),
        (["--variant=b0", "--phi=nan"], "phi must be a finite real number"),
        (["--variant=b2", "--phi=1"], "takes no phi"),
    ):
        done = run_summary(*args)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        assert message in done.stderr.strip().splitlines()[-1]
