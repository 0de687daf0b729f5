"""What this machine is and how fast it really is: ``collect() -> HardwareReport``.

    from devicelab.hardware import collect
    report = collect()                # CPU, memory, CPU budget, software, GPUs, doctor
    report = collect(measure=True)    # plus measured matmul TFLOP/s, bandwidths, latencies

Formatting lives in ``devicelab.report.hardware``; the JSON form is ``devicelab.hardware.report.to_dict``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from devicelab.hardware.probes import Probes, default_probes
from devicelab.hardware.report import SCHEMA_VERSION, HardwareReport

__all__ = ["SCHEMA_VERSION", "HardwareReport", "Probes", "collect", "default_probes"]


def _quiet(_: str) -> None:
    return None


def collect(
    probes: Probes | None = None,
    *,
    measure: bool = False,
    quick: bool = False,
    on_step: Callable[[str], None] = _quiet,
) -> HardwareReport:
    """Read the hardware (through ``probes``: the real machine by default) and, with ``measure``, time it."""
    from devicelab.hardware.budget import collect_budget
    from devicelab.hardware.cpu import collect_cpu
    from devicelab.hardware.doctor import diagnose
    from devicelab.hardware.gpu import collect_gpus
    from devicelab.hardware.memory import collect_memory
    from devicelab.hardware.software import collect_software

    probes = probes or default_probes()
    scan = collect_gpus(probes)
    report = HardwareReport(
        schema_version=SCHEMA_VERSION,
        cpu=collect_cpu(probes),
        memory=collect_memory(probes),
        budget=collect_budget(probes),
        software=collect_software(probes, scan.nvml.driver, scan.nvml.driver_cuda),
        gpus=scan.gpus,
        doctor=diagnose(probes, scan),
        measurements=None,
        missing={} if measure else {"measurements": "not measured (run with --measure)"},
    )
    if measure:
        from devicelab.hardware.measure import measure_report

        report = dataclasses.replace(
            report, measurements=measure_report(report, quick=quick, on_step=on_step)
        )
    return report
