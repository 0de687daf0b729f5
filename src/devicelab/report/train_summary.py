"""The text ``devicelab train`` prints when a run ends (a ``RunResult`` and its folder in, lines out)."""

from __future__ import annotations

from pathlib import Path

from devicelab.i18n import _, translate
from devicelab.i18n.labels import device_label, metric_label, status_text
from devicelab.report.tables import format_key_values


def _step_line(result) -> str:  # the runner's reason says what ran and why
    return result.path_reason or result.path


def train_summary(result, folder: Path) -> str:
    """What ``devicelab train`` prints at the end: the run's folder, status, device, step, time and
    final metrics, one per line."""
    final = result.final
    pairs = [
        (_("run folder"), folder),
        (
            _("status"),
            _("{status} ({done} of {total} epochs)").format(
                status=status_text(result.status), done=result.epochs_done, total=result.config.epochs
            ),
        ),
        (_("device"), device_label(result.choice.device, result.choice.threads)),
        (_("step"), translate(_step_line(result))),
        (
            _("wall time"),
            _("{seconds:.2f} s for {epochs} epochs ({us:.1f} µs/epoch)").format(
                seconds=result.wall_s, epochs=result.session_epochs, us=result.us_per_epoch
            )
            + (
                _(", after {seconds:.2f} s of compile/capture").format(seconds=result.setup_s)
                if result.setup_s >= 0.005
                else ""
            ),
        ),
        (_("host syncs"), _("{n} (one per log point)").format(n=result.host_syncs)),
    ]
    if result.self_check:
        pairs.append((_("self-check"), self_check_line(result.self_check)))
    if result.fallback:
        pairs.append((_("fallback"), translate(result.fallback)))
    if result.early_stopping:
        from devicelab.report.records import early_stopping_line

        pairs.append((_("early stopping"), early_stopping_line(result.early_stopping, result.status)))
    if result.cross_validation:
        from devicelab.report.run_lines import cv_line

        pairs.append((_("cross-validation"), cv_line(result.cross_validation)))
    if result.validation:
        from devicelab.report.run_lines import validation_line

        pairs.append((_("validation estimate"), validation_line(result.validation)))
    if result.world_size > 1:
        pairs.append(("processes", f"{result.world_size} (torchrun + DistributedDataParallel)"))
    if result.data_mode != "device":
        pairs.append(("data", result.data_reason))
    if result.checkpoints and result.checkpoints["written"]:
        c = result.checkpoints
        pairs.append(
            (
                _("checkpoints"),
                _("{written} written in {seconds:.3f} s (every {every:g} s)").format(
                    written=c["written"], seconds=c["seconds"], every=c["every_s"]
                ),
            )
        )
    from devicelab.report.run_lines import baseline_line, number
    from devicelab.training.evaluate import NO_TEST_ROWS
    from devicelab.training.units import in_units

    # a regression's losses in the target's units, agreeing with its RMSE and R² (training/units.py)
    final = in_units(final, result.dataset.task, result.dataset.target_scaler)
    pairs += [
        (metric_label(key), number(value))
        for key, value in final.items()
        if key not in ("epoch", "elapsed_s")
    ]
    if not len(result.dataset.x_test):
        pairs.append((_("test metrics"), _(NO_TEST_ROWS)))
    if result.baseline:
        pairs.append((_("linear baseline"), baseline_line(result.baseline)))
    return format_key_values(pairs, indent="")


def self_check_line(check: dict) -> str:
    """The fast path's check against the eager step, as figures."""
    verdict = _("passed") if check["passed"] else _("failed")
    return _(
        "{verdict}: {epochs} epochs against the eager step, losses within {loss:.1g}, weights within {weights:.1g}"
    ).format(
        verdict=verdict, epochs=check["epochs"], loss=check["max_loss_diff"], weights=check["max_weight_diff"]
    )
