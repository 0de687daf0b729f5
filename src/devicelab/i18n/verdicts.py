"""The verdicts of ``bench logging`` and ``profile`` in the current language, from their figures.

``devicelab.bench.verdict`` writes each verdict's English text and keeps the numbers behind it in
``figures``; in English that text is shown as it is, in another language the sentence is rebuilt here from
the catalogue with the same numbers. The three explanations are titled as the lesson words them.
"""

from __future__ import annotations

from collections.abc import Mapping

from devicelab.i18n import N_, _, language

TITLES = {  # the English titles are devicelab.bench.verdict.TITLES; the zh ones the lesson's own words
    1: N_("the computation graph is kept, so more records mean more memory and slower steps"),
    2: N_("the cost of each .item() sync is hidden by GPU compute running alongside"),
    3: N_("the remaining-time estimate is too noisy to show the difference"),
}
OUTCOMES = {
    "supported": N_("supported"),
    "refuted": N_("refuted"),
    "within noise": N_("within noise"),
    "not measured": N_("not measured"),
}


def explanation_title(n: int, english: str = "") -> str:
    if language() == "en":
        return english or TITLES.get(n, "")
    return _(TITLES[n]) if n in TITLES else english


def outcome_text(outcome: str) -> str:
    return _(OUTCOMES[outcome]) if outcome in OUTCOMES else outcome


def _mb(n: float) -> str:
    return f"{n / 1e6:+.2f} MB"


def verdict_text(verdict: Mapping) -> str:
    """The verdict's sentence: its own English text, or rebuilt in the current language from its figures."""
    if language() == "en":
        return verdict["text"]
    f, device, outcome = verdict.get("figures") or {}, verdict["device"], verdict["outcome"]
    try:
        rule = {1: _graph_memory, 2: _sync_overlap, 3: _eta_noise}[verdict["explanation"]]
        return rule(f, device, outcome) if f else _not_measured(device)
    except (KeyError, TypeError, ValueError):  # figures of another version: the English text is still right
        return verdict["text"]


def _not_measured(device: str) -> str:
    return _("Not measured on {device}: this run lacks the cells or the repeats this verdict needs.").format(
        device=device
    )


def _graph_memory(f: Mapping, device: str, outcome: str) -> str:
    item0, item1 = f["item_us_per_epoch"]
    tensor0, tensor1 = f["tensor_us_per_epoch"]
    values = {
        "device": device,
        "span": _("from k={a} to k={b}, {records} more records").format(
            a=f["from_interval"], b=f["to_interval"], records=f["records"]
        ),
        "times": _("Per epoch: item {i0:.0f} -> {i1:.0f} µs, tensor {t0:.0f} -> {t1:.0f} µs.").format(
            i0=item0, i1=item1, t0=tensor0, t1=tensor1
        ),
        "item_growth": _mb(f["item_growth_bytes"]),
        "tensor_growth": _mb(f["tensor_growth_bytes"]),
        "item_per_record": f"{f['item_bytes_per_record']:.0f}",
        "tensor_per_record": f"{f['tensor_bytes_per_record']:.0f}",
        "tensor_per_1000": f"{f['tensor_bytes_per_record'] * 1000 / 1e6:.2f}",
        "noise": f"{f['memory_noise_bytes'] / 1e6:.2f}",
    }
    if outcome == "within noise":
        template = _(
            "Within noise on {device}: even appending the loss tensor changed memory by only {tensor_growth} "
            "{span}, not beyond the memory noise of {noise} MB, so this run cannot tell (run more epochs). {times}"
        )
    elif outcome == "supported":
        template = _(
            "Supported on {device}: recording with loss.item() grew memory by {item_growth} {span}, "
            "{item_per_record} bytes per record, comparable to appending the tensor ({tensor_per_record} bytes "
            "per record). {times}"
        )
    else:
        template = _(
            "Refuted for the lesson's loss.item() on {device}: its memory changed by {item_growth} {span} "
            "({item_per_record} bytes per record; noise {noise} MB), while appending the loss tensor grew it by "
            "{tensor_growth} ({tensor_per_1000} MB per 1000 records). .item() returns a Python float and keeps "
            "no graph; the explanation holds only for the mistake of keeping the tensor. {times}"
        )
    return template.format(**values)


def _sync_overlap(f: Mapping, device: str, outcome: str) -> str:
    observed, predicted, spread = f["observed_s"], f["predicted_s"], f["spread_s"]
    facts_template = (
        _(
            "one sync costs {per_sync:.1f} µs here, so {syncs} more syncs should cost {predicted:.3f} s = "
            "{percent:.1f}% of the {run:.2f} s run; the run took {observed:.3f} s longer, against a run-to-run "
            "spread of {spread:.3f} s"
        )
        if observed >= 0
        else _(
            "one sync costs {per_sync:.1f} µs here, so {syncs} more syncs should cost {predicted:.3f} s = "
            "{percent:.1f}% of the {run:.2f} s run; the run took {observed:.3f} s less, against a run-to-run "
            "spread of {spread:.3f} s"
        )
    )
    facts = facts_template.format(
        per_sync=f["per_sync_us"],
        syncs=f["syncs"],
        predicted=predicted,
        percent=f["predicted_percent"],
        run=f["run_s"],
        observed=abs(observed),
        spread=spread,
    )
    if "out_of_order" in f:
        return _out_of_order(f, device, facts)
    if outcome == "refuted":
        template = _("Refuted on {device}: {facts}. The recording cost is visible and paid, not hidden.")
    elif outcome == "supported" and observed > spread:
        template = _(
            "Supported on {device}: {facts}. Less than half of the syncs' cost shows: most is hidden."
        )
    elif outcome == "supported":
        template = _(
            "Supported on {device}: {facts}. The syncs should have shown but did not: they were hidden."
        )
    elif predicted > spread:  # the difference is within a spread of both paid and hidden
        template = _(
            "Within noise on {device}: {facts}. The difference is within the spread both of the full cost "
            "({predicted:.3f} s, paid) and of none (hidden), so this run cannot tell which; more --repeats or "
            "--epochs narrow the spread."
        )
    else:
        template = _(
            "Within noise on {device}: {facts}. The syncs cost less than the run-to-run spread, so there is "
            "nothing for overlap to hide; recording frequency cannot matter here."
        )
    return template.format(device=device, facts=facts, predicted=predicted)


def _eta_noise(f: Mapping, device: str, outcome: str) -> str:
    facts = _(
        "k={a} and k={b} differ by {difference:.3f} s, against a run-to-run spread of {spread:.3f} s; the "
        "tqdm-style estimate of the remaining time was off by {eta:.3f} s (median over the run; the "
        "cumulative mean by {eta_mean:.3f} s)"
    ).format(
        a=f["interval_a"],
        b=f["interval_b"],
        difference=f["difference_s"],
        spread=f["spread_s"],
        eta=f["eta_smoothed_error_s"],
        eta_mean=f["eta_mean_error_s"],
    )
    if "out_of_order" in f:
        return _out_of_order(f, device, facts)
    if outcome == "refuted":
        template = _(
            "Refuted on {device}: {facts}. The difference is real and an estimate this good would show it."
        )
    elif outcome == "supported":
        template = _("Supported on {device}: {facts}. The estimate is noisier than the runs themselves.")
    else:
        template = _(
            "Within noise on {device}: {facts}. The estimate is as good as the runs are repeatable; the "
            "difference itself is lost in run-to-run spread, not in the estimate."
        )
    return template.format(device=device, facts=facts)


def _out_of_order(f: Mapping, device: str, facts: str) -> str:
    slower, faster = f["out_of_order"]
    return _(
        "Within noise on {device}: {facts}. But k={slower} was {gap:.3f} s slower than k={faster}, which syncs "
        "more (spread {spread:.3f} s): a sync only adds time, so the machine's speed changed between cells and "
        "no difference here is evidence; run again on a quieter machine or with more --repeats."
    ).format(
        device=device,
        facts=facts,
        slower=slower,
        faster=faster,
        gap=f["out_of_order_gap_s"],
        spread=f["out_of_order_spread_s"],
    )


REGIMES = {
    "overhead-bound": N_("overhead-bound"),
    "compute/memory-bound": N_("compute/memory-bound"),
    "partly overhead-bound": N_("partly overhead-bound"),
}


def regime_verdict(regime: Mapping) -> str:
    """profile's one-line verdict, from its regime record (``to_dict()`` or the JSON)."""
    verdict = regime["verdict"]
    return _(
        "Regime: {verdict} — {share:.0%} of the step at this size is fixed cost ({fixed:,.1f} µs that does not "
        "grow with the work); {work:.0f}× the work took {time:.1f}× the time (fastest of 5 repeats per size)"
    ).format(
        verdict=_(REGIMES[verdict]) if verdict in REGIMES else verdict,
        share=regime["fixed_share"],
        fixed=regime["fixed_s"] * 1e6,
        work=regime["work_growth"],
        time=regime["time_growth"],
    )
