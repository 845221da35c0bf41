"""What a benchmark records about the machine it ran on."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np

__all__ = ["machine_info"]


def machine_info(load_before: float) -> dict[str, Any]:
    """Python, platform, CPUs and the load average before and after the run.

    Other work on the machine makes timings noisy; the load average says how busy it was.
    """
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "loadavg_1m_start": round(load_before, 2),
        "loadavg_1m_end": round(os.getloadavg()[0], 2),
    }
