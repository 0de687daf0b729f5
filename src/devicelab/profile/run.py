"""Profile one workload (a TrainConfig on a device) from every side, into one ``ProfileReport``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from devicelab.data import Dataset
from devicelab.profile import loops, sync_audit
from devicelab.profile.layers import LayerProfile
from devicelab.profile.phases import StepBreakdown, step_breakdown, watch_steps
from devicelab.profile.regime import PROBE_BUFFER, RegimeProbe, probe_regime
from devicelab.training.config import TrainConfig
from devicelab.training.device_choice import Candidate, DeviceChoice, choose_device
from devicelab.training.workload import STEP_KINDS, build_workload


@dataclass(frozen=True)
class ProfileReport:
    workload: dict
    layers: LayerProfile
    breakdown: StepBreakdown
    audits: tuple[sync_audit.SyncAudit, ...]
    regime: RegimeProbe | None

    def to_dict(self) -> dict:
        return {
            "workload": self.workload,
            "layers": self.layers.to_dict(),
            "step": self.breakdown.to_dict(),
            "sync_audit": [a.to_dict() for a in self.audits],
            "regime": self.regime.to_dict() if self.regime is not None else None,
        }


def audit_loops(
    config: TrainConfig, dataset: Dataset, device: torch.device, steps: int
) -> tuple[sync_audit.SyncAudit, ...]:
    """The lesson's loop and devicelab's own training (``devicelab.train``, as ``devicelab train`` runs it),
    ``steps`` epochs each on a fresh model, audited for syncs. The lesson's model and data are made before
    its audit starts; devicelab's run makes its own, so one-time copies to the device show in its audit."""
    from devicelab.training.loop import train

    def lesson(n: int) -> Callable[[], object]:
        work = build_workload(config, dataset, device, PROBE_BUFFER)
        optimizer = work.torch_optimizer()
        return lambda: loops.lesson_loop(work.model, work.loss_fn, optimizer, work.x, work.y, n)

    # on this device and thread count, so nothing is timed to choose them
    ours = replace(config, device=str(device), threads=torch.get_num_threads(), quiet=True)

    def devicelab(n: int) -> Callable[[], object]:
        return lambda: train(replace(ours, epochs=n), dataset=dataset)

    audits = []
    for name, make in (("lesson", lesson), ("devicelab", devicelab)):
        make(2)()  # first calls allocate; keep them out of the audit
        audits.append(sync_audit.audit(name, make(steps), device, steps))
    return tuple(audits)


ChooseDevice = Callable[[TrainConfig, Dataset], DeviceChoice]


def profile_workload(
    config: TrainConfig,
    dataset: Dataset,
    device: torch.device | str | None = None,
    *,
    steps: int = 20,
    regime: bool = True,
    on_stage: Callable[[str], None] = lambda stage: None,
    choose: ChooseDevice = choose_device,
) -> ProfileReport:
    """Layers, step phases, the sync audit and (with ``regime``) the regime probe for ``config``
    (whose data is ``dataset``, from ``devicelab.data.load_dataset``).

    With no ``device`` it profiles what ``devicelab train`` would run: the device and CPU thread count
    that the trainer's policy (``choose``, default ``choose_device``) picks for ``config.device``
    (``auto``: timed) and ``config.threads``. With a ``device``, that device, with ``config.threads`` or
    torch's current count. Torch's thread count is set for the profile and put back afterwards."""
    choice = _choice(config, dataset, device, choose)
    before = torch.get_num_threads()
    torch.set_num_threads(choice.threads)
    try:
        return _profile(config, dataset, choice, steps, regime, on_stage)
    finally:
        torch.set_num_threads(before)  # the profile leaves the process as it found it


def _choice(
    config: TrainConfig, dataset: Dataset, device: torch.device | str | None, choose: ChooseDevice
) -> DeviceChoice:
    if device is None:
        return choose(config, dataset)
    device = torch.device(device)
    given = Candidate(str(device), config.threads or torch.get_num_threads(), None)
    return DeviceChoice(given.device, given.threads, f"{given.label}: given to profile_workload", (given,))


def _profile(
    config: TrainConfig,
    dataset: Dataset,
    choice: DeviceChoice,
    steps: int,
    regime: bool,
    on_stage: Callable[[str], None],
) -> ProfileReport:
    device = torch.device(choice.device)
    work = build_workload(config, dataset, device, PROBE_BUFFER)
    on_stage("watching the steps (phases, layers)")
    watch = watch_steps(work, steps, layers=True)  # the profiler any script gets, on devicelab's step
    layers = watch.tape.profile()
    breakdown = step_breakdown(work, steps=steps, watch=watch)
    on_stage("auditing syncs")
    audits = audit_loops(config, dataset, device, steps)
    probe = None
    if regime:
        on_stage("probing sizes")
        probe = probe_regime(config, dataset, device)
    on_stage("timing the path train runs")
    path = train_path(config, dataset, device, choice.threads)
    summary = {
        "train_path": path,
        "dataset": dataset.name,
        "task": dataset.task,
        "batch": work.batch,
        "hidden": list(config.hidden),
        "optimizer": config.optimizer,
        "step": STEP_KINDS[work.kind],
        "device": str(device),
        "threads": torch.get_num_threads(),  # choice.threads, set by profile_workload
        "device_reason": choice.reason,
        "torch": torch.__version__,
    }
    return ProfileReport(summary, layers, breakdown, audits, probe)


def train_path(config: TrainConfig, dataset: Dataset, device: torch.device, threads: int) -> dict:
    """What ``devicelab train`` runs for ``config`` on ``device`` (its fast path where one applies, see
    ``devicelab.training.runner``), and its time per epoch as the device choice times it. Module hooks
    see only the eager step, so the layer table and phases profile that form of the same arithmetic."""
    from devicelab.training.device_choice import time_epoch
    from devicelab.training.runner import select_runner

    runner, reason = select_runner(build_workload(config, dataset, device, 1), config)
    return {
        "path": runner.name,
        "reason": reason,
        "s_per_epoch": time_epoch(config, dataset, device, threads),
    }
