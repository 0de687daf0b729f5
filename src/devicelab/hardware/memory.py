"""RAM: total and available, from psutil."""

from __future__ import annotations

from devicelab.hardware.probes import Probes
from devicelab.hardware.report import MemoryInfo


def collect_memory(probes: Probes) -> MemoryInfo:
    memory = probes.psutil.virtual_memory()
    return MemoryInfo(total_bytes=int(memory.total), available_bytes=int(memory.available))
