"""Resident memory of a process, for the benchmarks that report it."""

from __future__ import annotations

from pathlib import Path


def rss_mib(pid: int) -> float:
    """VmRSS of `pid` in MiB (0 when the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
