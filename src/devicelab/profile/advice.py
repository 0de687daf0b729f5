"""The verdict and the advice for a watched run: small rules from measurements to findings, ranked.

``verdict`` names the regime (sync-, input-, overhead- or compute-bound) from the phase shares, the
host's wait in syncs and the arithmetic rate reached against a rough peak of the device. Each rule in
``RULES`` turns the measurements into an ``Advice`` (what to do, the evidence, the time it would save per
step, or None where that cannot be estimated), or nothing; ``rank`` orders them by saving. The text is
English data here; ``devicelab.report.profile`` formats it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from devicelab.profile.sync_audit import short_path

OVERHEAD, COMPUTE, MIXED = "overhead-bound", "compute-bound", "partly overhead-bound"
SYNC, INPUT = "sync-bound", "input-bound"
SHARE_BOUND = 0.3  # a phase or the syncs taking this share of the step decide the regime


@dataclass(frozen=True)
class Verdict:
    regime: str
    evidence: str
    flop_per_s: float | None
    peak_flop_per_s: float | None
    peak_basis: str


@dataclass(frozen=True)
class Advice:
    finding: str
    evidence: str
    saving_s: float | None  # per step
    step_s: float


def rough_peak(device: str, threads: int) -> tuple[float, str]:
    """An order-of-magnitude fp32 peak (not a measurement: ``devicelab info --measure`` measures one)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        sms = torch.cuda.get_device_properties(dev).multi_processor_count
        return sms * 128 * 2 * 1.5e9, f"rough: {sms} SMs x 128 fp32 lanes x 2 FLOP x 1.5 GHz"
    return threads * 32 * 2.5e9, f"rough: {threads} thread(s) x 32 FLOP/clock x 2.5 GHz"


def _share(breakdown, name: str) -> float:
    """The phase's share of the watched step (its mean over the phases' summed means: a share never
    above 100%, where a mean phase over the median bare step could be, with a slow first batch)."""
    phase = next((p for p in breakdown.phases if p.name == name), None)
    return breakdown.share(phase) if phase is not None else 0.0


def verdict(breakdown, layers, syncs, device: str, threads: int) -> Verdict | None:
    if breakdown is None or not breakdown.step_s:
        return None
    waited = sum(s.wait_s for s in syncs if not s.would_sync)
    peak, basis = rough_peak(device, threads)
    flops = None
    if layers is not None and layers.total.macs is not None:
        training = any(p.name == "backward" and p.host_s > 0 for p in breakdown.phases)
        flops = layers.total.macs * (6 if training else 2) / breakdown.step_s
    step_us = breakdown.step_s * 1e6
    if waited / breakdown.step_s >= SHARE_BOUND:
        return Verdict(SYNC, f"the host waits in syncs {waited * 1e6:,.1f} µs of the {step_us:,.1f} µs step",
                       flops, peak, basis)  # fmt: skip
    if _share(breakdown, "data") >= SHARE_BOUND:
        return Verdict(INPUT, f"loading and copying data takes {_share(breakdown, 'data'):.0%} of the step",
                       flops, peak, basis)  # fmt: skip
    if flops is None:
        return Verdict(MIXED, "the layers' arithmetic is unknown: no rate to compare", None, peak, basis)
    rate = flops / peak
    regime = OVERHEAD if rate < 0.05 else COMPUTE if rate > 0.3 else MIXED
    evidence = f"{flops / 1e9:,.3g} GFLOP/s reached, {rate:.1%} of the device's {peak / 1e9:,.0f} GFLOP/s"
    return Verdict(regime, evidence, flops, peak, basis)


FIXES = {
    ".item()": "keep the value on the device (losses.append(loss.detach())) and read it at log points",
    ".cpu()": "copy to the host only at log points, many values at once",
    ".tolist()": "copy to the host only at log points, many values at once",
    "bool(tensor)": "decide on the device (torch.where) or check less often",
    "float(tensor)": "keep the value on the device and read it at log points",
    "int(tensor)": "keep the value on the device and read it at log points",
    "format(tensor)": "print only at log points",
    "print/repr(tensor)": "print only at log points",
}


def _sync_advice(breakdown, syncs) -> list[Advice]:
    out = []
    step = f"{breakdown.step_s * 1e6:,.1f}"
    for s in syncs:
        if s.per_step < 0.5:
            continue  # a log point's read: that is where a read belongs
        where = f"{short_path(s.file)}:{s.line}"
        fix = _item_fix(s.code) if s.kind == ".item()" else ""
        fix = fix or FIXES.get(s.kind, "move it out of the step or to a log point")
        n, wait = f"{s.per_step:g}", f"{s.wait_s * 1e6:,.1f}"
        count = f"{n} sync a step" if s.per_step == 1 else f"{n} syncs a step"
        if s.would_sync:
            evidence = f"{count}, ~{wait} µs of {step} µs here; on a GPU each waits for all queued work"
        else:
            evidence = f"{count}, ~{wait} µs of {step} µs"
        out.append(Advice(f"defer the {s.kind} at {where}: {fix}", evidence, s.wait_s, breakdown.step_s))
    return out


def _item_fix(code: str) -> str:
    """The user's own line with ``.detach()`` for ``.item()`` (``total += loss.detach() * len(xb)``): the
    value stays a device tensor, read once at a log point; "" where the line does not show the call."""
    line = " ".join(code.split())
    if ".item()" not in line or len(line) > 80:
        return ""
    return f"keep the value on the device ({line.replace('.item()', '.detach()')}) and read it at log points"


def _phase_advice(breakdown, regime: Verdict | None, device: str, threads: int) -> list[Advice]:
    out = []
    step = breakdown.step_s
    data = _share(breakdown, "data")  # savings: that share of the bare step
    if data >= 0.2:
        out.append(Advice("load data ahead of the step: DataLoader(num_workers=..., pin_memory=True), or keep the "
                          "rows on the device", f"data takes {data:.0%} of the step", data * step * 0.8, step))  # fmt: skip
    evaluation = _share(breakdown, "eval")
    if evaluation >= 0.2:
        out.append(Advice("evaluate less often", f"evaluation under no_grad takes {evaluation:.0%} of the "
                          "step", evaluation * step / 2, step))  # fmt: skip
    if regime is not None and regime.regime in (OVERHEAD, MIXED):
        if torch.device(device).type == "cpu" and threads > 1:
            out.append(Advice("use one CPU thread (torch.set_num_threads(1)): tiny operators pay for waking "
                              f"{threads} threads", regime.evidence, None, step))  # fmt: skip
        if torch.device(device).type == "cuda":
            out.append(Advice("capture the step in a CUDA graph (torch.cuda.graphs), or train on the CPU",
                              regime.evidence, None, step))  # fmt: skip
        out.append(Advice("use a larger batch (more rows per step, fewer steps): the step's time is fixed cost",
                          regime.evidence, None, step))  # fmt: skip
    return out


def rank(breakdown, layers, syncs, regime, device: str, threads: int) -> tuple[Advice, ...]:
    if breakdown is None:
        return ()
    found = _sync_advice(breakdown, syncs) + _phase_advice(breakdown, regime, device, threads)
    return tuple(sorted(found, key=lambda a: -(a.saving_s if a.saving_s is not None else -1.0)))
