"""What machine a benchmark ran on, for the record in BENCHMARKS.md."""

from __future__ import annotations

import os
import platform


def cpu_description() -> str:
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
