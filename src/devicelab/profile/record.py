"""The typed record of one watched run: what was profiled, its phases, layers, syncs, regime and advice.

``build(watch, profiled)`` reads a finished ``Watch`` (every device clock once) into a ``WatchReport``;
``devicelab.report.profile`` formats it and ``to_dict`` is its JSON (schema ``devicelab.profile/2``).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field

import torch

from devicelab.profile import advice as advice_rules
from devicelab.profile.layers import LayerProfile
from devicelab.profile.phase_meter import PHASES, mean
from devicelab.profile.phases import Phase, StepBreakdown

SCHEMA = "devicelab.profile/2"


@dataclass(frozen=True)
class Profiled:
    """What ran: ``kind`` is "script", "module" (``-m``), "code" (``devicelab.watch()``), "model"
    (``devicelab.profile_step``) or "workload" (devicelab's own training); ``details`` depend on it."""

    kind: str
    target: str
    args: tuple[str, ...] = ()
    device: str = "cpu"
    threads: int = 1
    torch: str = torch.__version__
    step_source: str | None = None  # what ended a step: "optimizer", "backward" or "forward"
    optimizers: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SyncRow:
    file: str
    line: int
    function: str
    code: str
    kind: str
    calls: int
    per_step: float
    most_in_a_step: int
    wait_s: float  # host wait per step
    share: float | None  # of the uninstrumented step
    would_sync: bool  # on the CPU: a call that would sync on a GPU; nothing waited


@dataclass(frozen=True)
class WatchReport:
    profiled: Profiled
    warmup: int
    steps: int  # steps per window asked for
    measured: tuple[str, ...]  # the windows that finished: "baseline", "phases", "layers"
    step_s: float | None  # uninstrumented (bare) step, mean: periodic work included, as in the phases
    watched_step_s: float | None  # watched step, mean: the phases' sum
    breakdown: StepBreakdown | None
    layers: LayerProfile | None
    syncs: tuple[SyncRow, ...]
    syncs_per_step: dict[int, int]  # syncs in a step -> how many steps had that many
    regime: advice_rules.Verdict | None
    advice: tuple[advice_rules.Advice, ...]
    notes: tuple[str, ...] = ()
    # the watcher's own cost taken off each watched step's phases (measured on empty calls: hook_cost)
    own_cost_s: float | None = None
    switches_per_step: float = 0.0
    round_steps: int | None = None  # the windows taken in rounds of this many steps each (Watch.round_steps)

    def __str__(self) -> str:
        from devicelab.report.profile_watch import format_watch

        return format_watch(self)

    def to_dict(self) -> dict:
        return {
            "schema": SCHEMA,
            "profiled": asdict(self.profiled),
            "warmup": self.warmup,
            "steps": self.steps,
            "round_steps": self.round_steps,
            "measured": list(self.measured),
            "step_s": self.step_s,
            "watched_step_s": self.watched_step_s,
            "step": self.breakdown.to_dict() if self.breakdown else None,
            "layers": self.layers.to_dict() if self.layers else None,
            "syncs": [asdict(s) for s in self.syncs],
            "syncs_per_step": {str(k): v for k, v in sorted(self.syncs_per_step.items())},
            "regime": asdict(self.regime) if self.regime else None,
            "advice": [asdict(a) for a in self.advice],
            "notes": list(self.notes),
            "own_cost_s": self.own_cost_s,
            "switches_per_step": self.switches_per_step,
        }


def _breakdown(watch, step_s: float | None) -> StepBreakdown | None:
    meter = watch.meter
    if meter is None or meter.step == 0:
        return None
    host, device = meter.per_step()
    shown = [p for p in PHASES if p not in ("eval", "data") or any(host[p])]
    phases = tuple(Phase(p, mean(host[p]), mean(device[p]) if device else None) for p in shown)
    real = step_s if step_s is not None else mean(meter.step_seconds())
    iqr = statistics.quantiles(watch.baseline, n=4) if len(watch.baseline) >= 2 else None
    return StepBreakdown(phases, real, (iqr[2] - iqr[0]) if iqr else 0.0, None, meter.step, "script")


def _syncs(watch, step_s: float | None) -> tuple[tuple[SyncRow, ...], dict[int, int]]:
    rows: list[SyncRow] = []
    per_step_total: Counter[int] = Counter()
    called = {(s.file, s.line) for s in watch.recorder.sites()} if watch.recorder else set()
    for recorder, steps in ((watch.recorder, watch.recorder.step if watch.recorder else 0),
                            (watch.device_syncs, watch.tape.steps if watch.tape else 0)):  # fmt: skip
        if recorder is None or steps == 0:
            continue
        would = recorder.device_type == "cpu"
        for site in recorder.sites():
            if recorder is watch.device_syncs and (site.file, site.line) in called:
                continue  # the device's report of a call already counted (its .item(), by the calls watcher)
            key = (site.file, site.line, site.function, site.kind)
            in_window = {s: n for s, n in recorder.per_step[key].items() if s < steps}
            calls = sum(in_window.values())
            if not calls:
                continue
            if recorder is watch.recorder:
                for s, n in in_window.items():
                    per_step_total[s] += n
            wait = recorder.wait_s[key] / steps
            share = wait / step_s if step_s else None
            rows.append(SyncRow(site.file, site.line, site.function, site.code, site.kind, calls,
                                calls / steps, max(in_window.values()), wait, share, would))  # fmt: skip
    steps = watch.recorder.step if watch.recorder else 0
    histogram = Counter(per_step_total[s] for s in range(steps))
    rows.sort(key=lambda r: (-r.per_step, r.file, r.line))
    return tuple(rows), dict(histogram)


def build(watch, profiled: Profiled) -> WatchReport:
    """The record of a finished (or interrupted) ``Watch``."""
    # the same statistic as the phases' (a mean per step, _breakdown): a script's periodic work (an
    # evaluation every 5 steps, a print every 100) is part of its time per step, which a median leaves out
    step_s = mean(watch.baseline) if watch.baseline else None
    watched = watch.meter.step_seconds() if watch.meter is not None else []
    measured = tuple(
        name
        for name, done in (
            ("baseline", len(watch.baseline) >= 1),
            ("phases", watch.meter is not None and watch.meter.step >= 1),
            ("layers", watch.tape is not None and watch.tape.steps >= 1),
        )
        if done
    )
    breakdown = _breakdown(watch, step_s)
    layers = watch.tape.profile() if watch.tape is not None else None
    syncs, histogram = _syncs(watch, step_s)
    device = str(watch.device or "cpu")
    regime = advice_rules.verdict(breakdown, layers, syncs, device, torch.get_num_threads())
    tips = advice_rules.rank(breakdown, layers, syncs, regime, device, torch.get_num_threads())
    return WatchReport(
        profiled=profiled,
        warmup=watch.warmup,
        steps=watch.steps,
        round_steps=watch.round_steps,
        measured=measured,
        step_s=step_s,
        watched_step_s=mean(watched) if watched else None,  # the phases' sum
        breakdown=breakdown,
        layers=layers,
        syncs=syncs,
        syncs_per_step=histogram,
        regime=regime,
        advice=tips,
        notes=(*watch.notes, *_no_module_note(watch)),
        **_own_cost(watch.meter),
    )


NO_MODULE = (
    "no torch.nn.Module was called in the training steps (a model written as tensor math, called as "
    "model.forward(x), which skips the hooks, or inside a torch.compile'd function): its forward is in "
    "'loss' with the loss, and there are no layers to time"
)


def _no_module_note(watch) -> tuple[str, ...]:
    """Said when the steps trained without a module call: the phases cannot split the model's forward
    from its loss, and the layer table is empty (rather than missing without a word)."""
    meter, tape = watch.meter, watch.tape
    if watch.mode not in ("backward", "optimizer") or meter is None or meter.step < 1:
        return ()
    if tape is not None and tape.roots:
        return ()
    if any(segment.phase in ("forward", "eval") for segment in meter.segments):
        return ()
    return (NO_MODULE,)


def _own_cost(meter) -> dict:
    cost = meter.switch_cost() if meter is not None else None
    if cost is None:
        return {}
    return {"own_cost_s": cost.inner_s + cost.outer_s, "switches_per_step": meter.switches_per_step()}
