"""The answer to the homework: one verdict per explanation and device, computed from the measurements.

Each verdict is ``supported``, ``refuted`` or ``within noise`` (``not measured`` when the grid lacks the
cells it needs, or a compared cell has fewer than two timed runs and so no spread), with the figures
behind it. The rules, where "spread" is the larger IQR of the two cells
compared:

1. Graph memory ("more records keep more graphs, so more memory and slower steps"). The ``tensor``
   strategy is the positive control: appending the loss tensor does keep graphs. If its memory growth
   from the fewest to the most records is not beyond the memory noise (the largest of the cells' IQRs,
   the growth of a run that records nothing and one memory page), the run cannot tell: *within noise*. Otherwise the
   lesson's ``item`` is judged: *supported* when it also grows beyond the noise by at least half as many
   bytes per record as ``tensor``, else *refuted*.
2. Sync hidden by overlap ("GPU compute hides the cost of each ``.item()`` sync"). Predicted cost P =
   extra syncs x the directly measured cost of one sync; observed cost D = time with the most records
   minus time with the fewest (``item``). Two outcomes are told apart: *paid* (D = P) and *hidden*
   (D = 0); a difference counts only beyond the spread, as in rule 3. *Refuted* when D is beyond the
   spread and at least P/2 (the cost shows, at least half of it: paid, not hidden); *supported* when P
   and the shortfall P - D are beyond the spread and D < P/2 (more than half of the cost is missing);
   else *within noise*: D is within a spread of both 0 and P (a run that paid 82% of P with a spread
   wider than that cannot tell paid from hidden), or P itself is within the spread (nothing to hide).
3. Remaining-time estimate ("the estimate is too noisy to show the difference"). D = the time difference
   between the homework's two intervals (100 and 2000, or the nearest the grid has), E = the median error
   of the tqdm-style estimate. *Refuted* when D exceeds both the spread and E (a real difference the
   estimate would show); otherwise *supported* when E exceeds the spread (the estimate is noisier than the
   runs themselves), else *within noise* (the estimate is as good as the runs are repeatable, and the
   difference is lost in run-to-run spread).

Before rules 2 and 3 take a side, the ``item`` cells must be in the order syncs could put them: a cell with
fewer syncs cannot be slower than one with more, since a sync only adds time. When one is, by more than the
spread of that pair (under load the machine's speed drifts between cells, which no cell's IQR shows), the
run's timing differences are not evidence: *within noise*, naming the pair.
"""

from __future__ import annotations

import mmap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from devicelab.bench.logging_experiment import CellResult

SUPPORTED, REFUTED, WITHIN_NOISE, NOT_MEASURED = "supported", "refuted", "within noise", "not measured"
TITLES = {
    1: "the computation graph is kept, so more records mean more memory and slower steps",
    2: "the cost of each .item() sync is hidden by GPU compute running alongside",
    3: "the remaining-time estimate is too noisy to show the difference",
}
HOMEWORK_PAIR = (100, 2000)  # the lesson's "every 100 vs every 2000 epochs"
MIN_RUNS = 2  # timed runs a cell needs before its spread means anything
PAGE = mmap.PAGESIZE  # resident memory grows in pages: a smaller change cannot be seen


@dataclass(frozen=True)
class Verdict:
    explanation: int
    device: str
    outcome: str
    text: str
    figures: dict[str, object] = field(default_factory=dict)


def judge(cells: Sequence[CellResult], per_sync_s: Mapping[str, float]) -> list[Verdict]:
    """All verdicts, explanation by explanation, each for every device in the order the cells list them."""
    devices = list(dict.fromkeys(c.device for c in cells))
    verdicts = []
    for rule in (graph_memory, sync_overlap, eta_noise):
        for device in devices:
            verdicts.append(rule([c for c in cells if c.device == device], device, per_sync_s.get(device)))
    return verdicts


def _k(interval: int | None) -> str:
    return "never" if interval is None else str(interval)


def _mb(n: float) -> str:
    return f"{n / 1e6:+.2f} MB"


def _by_interval(cells: Sequence[CellResult], strategy: str) -> dict[int | None, CellResult]:
    return {c.interval: c for c in cells if c.strategy == strategy}


def _extremes(by_interval: dict[int | None, CellResult]) -> tuple[CellResult, CellResult] | None:
    """(the cell with the most records, the one with the fewest), or None with fewer than two cells."""
    if len(by_interval) < 2:
        return None
    ordered = sorted(by_interval.values(), key=lambda c: c.records)
    return ordered[-1], ordered[0]


def _spread(a: CellResult, b: CellResult) -> float:
    return max(a.times.iqr, b.times.iqr)


def _missing(n: int, device: str, what: str) -> Verdict:
    return Verdict(n, device, NOT_MEASURED, f"Not measured on {device}: needs {what}.")


def _too_few_runs(n: int, device: str, compared: Sequence[CellResult]) -> Verdict | None:
    """A verdict of 'not measured' when a compared cell has no run-to-run spread (fewer than two runs)."""
    runs = min(len(c.times.times) for c in compared)
    if runs >= MIN_RUNS:
        return None
    return _missing(
        n, device, f"at least {MIN_RUNS} timed runs per cell for a run-to-run spread (had {runs})"
    )


def _out_of_order(cells: Sequence[CellResult]) -> tuple[CellResult, CellResult] | None:
    """(the slower cell, the faster one) of the pair of ``item`` cells most against the order syncs impose
    (the first has fewer syncs yet is slower), where that gap is beyond the pair's own spread; None if none."""
    item = [c for c in cells if c.strategy == "item"]
    pairs = [(a, b) for a in item for b in item if a.syncs < b.syncs]
    gaps = [(a.times.median - b.times.median, a, b) for a, b in pairs]
    beyond = [(gap, a, b) for gap, a, b in gaps if gap > _spread(a, b)]
    if not beyond:
        return None
    _gap, slower, faster = max(beyond, key=lambda g: g[0])
    return slower, faster


def _order_figures(pair: tuple[CellResult, CellResult] | None) -> dict[str, object]:
    if pair is None:
        return {}
    slower, faster = pair
    return {
        "out_of_order": (_k(slower.interval), _k(faster.interval)),
        "out_of_order_gap_s": slower.times.median - faster.times.median,
        "out_of_order_spread_s": _spread(slower, faster),
    }


def _disorder_text(device: str, facts: str, figures: dict) -> str:
    slower, faster = figures["out_of_order"]
    return (
        f"Within noise on {device}: {facts}. But k={slower} was {figures['out_of_order_gap_s']:.3f} s slower "
        f"than k={faster}, which syncs more (spread {figures['out_of_order_spread_s']:.3f} s): a sync only "
        "adds time, so the machine's speed changed between cells and no difference here is evidence; run "
        "again on a quieter machine or with more --repeats."
    )


def graph_memory(cells: Sequence[CellResult], device: str, per_sync_s: float | None = None) -> Verdict:
    item, tensor = _extremes(_by_interval(cells, "item")), _extremes(_by_interval(cells, "tensor"))
    if item is None or tensor is None or item[0].records == item[1].records:
        return _missing(1, device, "the item and tensor strategies at two or more intervals")
    (item_hi, item_lo), (tensor_hi, tensor_lo) = item, tensor
    if (few := _too_few_runs(1, device, (*item, *tensor))) is not None:
        return few
    records = item_hi.records - item_lo.records
    item_growth = item_hi.memory_median - item_lo.memory_median
    tensor_growth = tensor_hi.memory_median - tensor_lo.memory_median
    noise = max(
        *(c.memory_iqr for c in (item_hi, item_lo, tensor_hi, tensor_lo)),
        abs(item_lo.memory_median) if item_lo.records == 0 else 0.0,
        abs(tensor_lo.memory_median) if tensor_lo.records == 0 else 0.0,
        PAGE,
    )
    item_per_record = item_growth / records
    tensor_per_record = tensor_growth / max(1, tensor_hi.records - tensor_lo.records)
    figures = {
        "records": records,
        "from_interval": _k(item_lo.interval),
        "to_interval": _k(item_hi.interval),
        "item_growth_bytes": item_growth,
        "tensor_growth_bytes": tensor_growth,
        "item_bytes_per_record": item_per_record,
        "tensor_bytes_per_record": tensor_per_record,
        "memory_noise_bytes": noise,
        "item_us_per_epoch": (item_lo.us_per_epoch, item_hi.us_per_epoch),
        "tensor_us_per_epoch": (tensor_lo.us_per_epoch, tensor_hi.us_per_epoch),
    }
    span = f"from k={_k(item_lo.interval)} to k={_k(item_hi.interval)}, {records} more records"
    times = (
        f"Per epoch: item {item_lo.us_per_epoch:.0f} -> {item_hi.us_per_epoch:.0f} µs, "
        f"tensor {tensor_lo.us_per_epoch:.0f} -> {tensor_hi.us_per_epoch:.0f} µs."
    )
    if tensor_growth <= noise:
        outcome = WITHIN_NOISE
        text = (
            f"Within noise on {device}: even appending the loss tensor changed memory by only "
            f"{_mb(tensor_growth)} {span}, not beyond the memory noise of {noise / 1e6:.2f} MB, so this run "
            f"cannot tell (run more epochs). {times}"
        )
    elif item_growth > noise and item_per_record >= 0.5 * tensor_per_record:
        outcome = SUPPORTED
        text = (
            f"Supported on {device}: recording with loss.item() grew memory by {_mb(item_growth)} {span}, "
            f"{item_per_record:.0f} bytes per record, comparable to appending the tensor "
            f"({tensor_per_record:.0f} bytes per record). {times}"
        )
    else:
        outcome = REFUTED
        text = (
            f"Refuted for the lesson's loss.item() on {device}: its memory changed by {_mb(item_growth)} "
            f"{span} ({item_per_record:.0f} bytes per record; noise {noise / 1e6:.2f} MB), while appending "
            f"the loss tensor grew it by {_mb(tensor_growth)} ({tensor_per_record * 1000 / 1e6:.2f} MB per "
            f"1000 records). .item() returns a Python float and keeps no graph; the explanation holds only "
            f"for the mistake of keeping the tensor. {times}"
        )
    return Verdict(1, device, outcome, text, figures)


def sync_overlap(cells: Sequence[CellResult], device: str, per_sync_s: float | None = None) -> Verdict:
    item = _extremes(_by_interval(cells, "item"))
    if item is None or per_sync_s is None or item[0].syncs == item[1].syncs:
        return _missing(2, device, "the item strategy at two or more intervals and the measured sync cost")
    hi, lo = item
    if (few := _too_few_runs(2, device, item)) is not None:
        return few
    syncs = hi.syncs - lo.syncs
    predicted = syncs * per_sync_s
    observed = hi.times.median - lo.times.median
    spread = _spread(hi, lo)
    run = lo.times.median
    percent = 100 * predicted / run if run > 0 else 0.0
    paid = observed / predicted if predicted > 0 else None  # share of the predicted cost that showed
    figures = {
        "per_sync_us": per_sync_s * 1e6,
        "syncs": syncs,
        "predicted_s": predicted,
        "observed_s": observed,
        "spread_s": spread,
        "run_s": run,
        "predicted_percent": percent,
        "paid_percent": None if paid is None else 100 * paid,
        **_order_figures(_out_of_order(cells)),
    }
    facts = (
        f"one sync costs {per_sync_s * 1e6:.1f} µs here, so {syncs} syncs (k={_k(hi.interval)} vs "
        f"k={_k(lo.interval)}) should cost {predicted:.3f} s = {percent:.1f}% of the "
        f"{run:.2f} s run; the run took {abs(observed):.3f} s {'longer' if observed >= 0 else 'less'}"
        f"{'' if paid is None else f' ({100 * paid:.0f}% of the predicted cost)'}, against a "
        f"run-to-run spread of {spread:.3f} s"
    )
    if "out_of_order" in figures:
        return Verdict(2, device, WITHIN_NOISE, _disorder_text(device, facts, figures), figures)
    outcome, text = _sync_outcome(device, facts, predicted, observed, spread)
    return Verdict(2, device, outcome, text, figures)


def _sync_outcome(
    device: str, facts: str, predicted: float, observed: float, spread: float
) -> tuple[str, str]:
    """Paid (observed = predicted) or hidden (observed = 0): a side is taken only when the observed
    difference is beyond the spread from the other side, and nearer to this one than to the other."""
    if observed > spread and observed >= predicted / 2:
        return REFUTED, f"Refuted on {device}: {facts}. The recording cost is visible and paid, not hidden."
    if predicted > spread and predicted - observed > spread and observed < predicted / 2:
        if observed > spread:
            why = "Less than half of the syncs' cost shows: most is hidden."
        else:
            why = "The syncs should have shown but did not: they were hidden."
        return SUPPORTED, f"Supported on {device}: {facts}. {why}"
    if predicted <= spread:
        why = (
            "The syncs cost less than the run-to-run spread, so there is nothing for overlap to hide; "
            "recording frequency cannot matter here."
        )
    else:
        why = (
            f"The difference is within the spread both of the full cost ({predicted:.3f} s, paid) and of "
            "none (hidden), so this run cannot tell which; more --repeats or --epochs narrow the spread."
        )
    return WITHIN_NOISE, f"Within noise on {device}: {facts}. {why}"


def _homework_pair(by_interval: dict[int | None, CellResult]) -> tuple[CellResult, CellResult] | None:
    """k=100 and k=2000; where the grid lacks one, the grid's extreme farthest from the other."""
    extremes = _extremes(by_interval)
    if extremes is None:
        return None
    most, fewest = extremes
    a, b = (by_interval.get(k) for k in HOMEWORK_PAIR)
    if a is None and b is None:
        return most, fewest
    if a is None:
        a = most if b is not most else fewest
    if b is None:
        b = fewest if a is not fewest else most
    return a, b


def eta_noise(cells: Sequence[CellResult], device: str, per_sync_s: float | None = None) -> Verdict:
    by_interval = _by_interval(cells, "item")
    pair = _homework_pair(by_interval)
    if pair is None:
        return _missing(3, device, "the item strategy at two or more intervals")
    a, b = pair
    if (few := _too_few_runs(3, device, pair)) is not None:
        return few
    difference = abs(a.times.median - b.times.median)
    spread = _spread(a, b)
    eta = max(a.eta_smoothed_s, b.eta_smoothed_s)
    eta_mean = max(a.eta_mean_s, b.eta_mean_s)
    figures = {
        "interval_a": _k(a.interval),
        "interval_b": _k(b.interval),
        "difference_s": difference,
        "spread_s": spread,
        "eta_smoothed_error_s": eta,
        "eta_mean_error_s": eta_mean,
        **_order_figures(_out_of_order(cells)),
    }
    facts = (
        f"k={_k(a.interval)} and k={_k(b.interval)} differ by {difference:.3f} s, against a run-to-run spread "
        f"of {spread:.3f} s; the tqdm-style estimate of the remaining time was off by {eta:.3f} s (median "
        f"over the run; the cumulative mean by {eta_mean:.3f} s)"
    )
    if "out_of_order" in figures:
        outcome, text = WITHIN_NOISE, _disorder_text(device, facts, figures)
    elif difference > max(spread, eta):
        outcome = REFUTED
        text = (
            f"Refuted on {device}: {facts}. The difference is real and an estimate this good would show it."
        )
    elif eta > spread:
        outcome = SUPPORTED
        text = f"Supported on {device}: {facts}. The estimate is noisier than the runs themselves."
    else:
        outcome = WITHIN_NOISE
        text = (
            f"Within noise on {device}: {facts}. The estimate is as good as the runs are repeatable; the "
            "difference itself is lost in run-to-run spread, not in the estimate."
        )
    return Verdict(3, device, outcome, text, figures)
