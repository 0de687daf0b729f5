"""The experiment runner on a tiny real CPU grid: the sync cost it uses, and stopping early (Ctrl-C)."""

from __future__ import annotations

from devicelab.bench.logging_experiment import Grid, run_experiment
from devicelab.training.config import TrainConfig
from devicelab.training.interrupt import StopFlag

GRID = Grid(
    epochs=30,
    intervals=(1, None),
    strategies=("item", "tensor"),
    devices=("cpu",),
    repeats=3,
    order_seed=0,
    threads=1,
)


def test_sync_cost_is_the_round_trip_info_measure_reports():
    """One definition of the cost of a sync: devicelab.hardware.measure.sync_round_trip."""
    experiment = run_experiment(TrainConfig(epochs=GRID.epochs), GRID)
    (cost,) = experiment.sync_costs
    assert cost.device == "cpu" and cost.round_trip.label == "sync_round_trip"
    assert cost.per_sync_s == cost.round_trip.median > 0  # measured, never clamped to zero
    assert not experiment.interrupted and experiment.runs_done == experiment.runs_planned == 4 * 4


def test_a_stop_request_keeps_every_cell_with_a_timed_run():
    stop = StopFlag()
    stop_after = 4 + 4 + 2  # the warm-ups, one full repeat, two runs of the second

    def progress(done: int, total: int, what: str) -> None:
        if done == stop_after:
            stop.request()

    experiment = run_experiment(TrainConfig(epochs=GRID.epochs), GRID, progress, stop)
    assert experiment.interrupted and experiment.runs_done == stop_after and experiment.runs_planned == 16
    assert len(experiment.cells) == 4
    repeats = sorted(len(c.times.times) for c in experiment.cells)
    assert repeats == [1, 1, 2, 2]
    assert [r for r, *_ in experiment.order] == [0] * 4 + [1] * 4 + [2] * 2
