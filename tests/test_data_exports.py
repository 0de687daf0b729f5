"""Files as spreadsheets and exports write them (tests/data/exports): numbers with thousands separators,
currency, percent and accounting negatives; IDs beside measurements; rare classes; a skewed target.
Each trains with the right roles, or is refused in one line that names the option that fixes it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from conftest import assert_user_error, run_cli
from devicelab.data import DataSpec, NumberFormat, TargetScaling, encode_target, load_dataset
from devicelab.data.columns import to_numbers
from devicelab.data.split import stratified_split
from devicelab.errors import UserError

EXPORTS = Path(__file__).parent / "data" / "exports"


def roles(data) -> dict[str, tuple[str, str]]:
    return {r.name: (r.role, r.detail) for r in data.roles}


def column(values) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, pa.string())])


def raw(name: str, column_name: str, delimiter: str = ",") -> list[str]:
    with open(EXPORTS / name, newline="", encoding="utf-8") as f:
        return [row[column_name] for row in csv.DictReader(f, delimiter=delimiter)]


@pytest.mark.parametrize(
    ("cells", "decimal", "expected", "said"),
    [
        (["50,222", "1,241", "980", "12,000,001"], ".", [50222, 1241, 980, 12000001], "separator ','"),
        (["$1,227.92", "$ 3.10", "-$5", "$-7.5"], ".", [1227.92, 3.10, -5, -7.5], "'$' stripped"),
        (["39%", "4.5%", "100%", "NA"], ".", [0.39, 0.045, 1.0, None], "'%' -> fraction"),
        (["(1,234)", "1,000", "(5)", "7"], ".", [-1234, 1000, -5, 7], "(1,234) -> -1234"),
        (["1.2e3", "-3E-2", "+4", ".5"], ".", [1200, -0.03, 4, 0.5], None),
        (["1.234,5", "12,25", "3.000.000", "7"], ".", [1234.5, 12.25, 3000000, 7], "separator '.'"),
        (["12,5", "3,0", "7"], ",", [12.5, 3.0, 7], "decimal comma"),
        (["1'234.50", "CHF 99", "12'000"], ".", [1234.5, 99, 12000], "'CHF' stripped"),
        (["12\u00a0345", "1\u202f000", "7 000 €"], ".", [12345, 1000, 7000], "separator ' '"),
        (["12 USD", "EUR 4,000.00", "£3"], ".", [12, 4000, 3], "'EUR', 'USD', '£' stripped"),
    ],
)
def test_numbers_as_spreadsheets_write_them(cells, decimal, expected, said):
    numbers, stray, _, fmt = to_numbers(column(cells), decimal)
    assert stray == 0
    got = numbers.to_pylist()
    assert [None if v is None else pytest.approx(v) for v in got] == expected
    assert (said or "") in fmt.describe() and (said is not None) == bool(fmt.describe())
    assert NumberFormat.from_dict(fmt.to_dict()) == fmt


def test_a_column_reads_one_way_throughout():
    """One format per column: a thousands comma and a decimal comma do not mix (the odd one is stray)."""
    cells = [f"{n:,}" for n in range(1000, 60_000, 1000)] + ["2,5"]
    numbers, stray, example, fmt = to_numbers(column(cells), ".")
    assert fmt.thousands == "," and stray == 1 and example == "2,5"
    assert numbers.to_pylist()[:2] == [1000, 2000] and numbers.to_pylist()[-1] is None


def test_export_with_separators_currency_and_percent_trains_on_numbers():
    data = load_dataset(DataSpec(data=str(EXPORTS / "sales_export.csv"), target="Bought"))
    got = roles(data)
    assert got["Customer ID"] == ("dropped", "ID (unique per row)")
    assert got["Annual Income"] == ("numeric", "numbers; thousands separator ',' removed")
    assert got["Revenue"] == ("numeric", "numbers; thousands separator ',' removed; '$' stripped")
    assert got["Margin"] == ("numeric", "numbers; '%' -> fraction (39% = 0.39)")
    assert got["Change"][1].endswith("(1,234) -> -1234")
    assert got["Order Date"][0] == "numeric" and got["Region"][0] == "categorical"
    # the numbers are the cells' values, as the MinMax scaling of the training rows shows
    income = np.array([float(v.replace(",", "")) for v in raw("sales_export.csv", "Annual Income")])
    i = data.preprocessor.numbers.index("Annual Income")
    assert (
        data.preprocessor.scaler.shift[i] in income
        and data.preprocessor.fill.medians["Annual Income"] > 20000
    )
    margin = data.preprocessor.scaler.shift[data.preprocessor.numbers.index("Margin")]
    assert 0 < margin < 1  # 5% .. 60% as fractions


def test_european_and_swiss_exports():
    eu = roles(load_dataset(DataSpec(data=str(EXPORTS / "eu_export.csv"), target="Kategorie")))
    assert eu["Preis"] == ("numeric", "numbers; decimal comma; '€' stripped")
    assert eu["Umsatz"] == ("numeric", "numbers; thousands separator '.' removed; decimal comma")
    assert eu["Rabatt"][1].startswith("numbers; decimal comma; '%' -> fraction")
    swiss = roles(load_dataset(DataSpec(data=str(EXPORTS / "swiss_export.csv"), target="Zufrieden")))
    assert swiss["uuid"] == ("dropped", "ID (unique per row)")
    assert swiss["Lohn"] == ("numeric", "numbers; thousands separator \"'\" removed; 'CHF' stripped")
    assert swiss["Miete"] == ("numeric", "numbers; thousands separator ' ' removed; 'CHF' stripped")
    assert swiss["Flaeche"][0] == "numeric"


def test_ids_are_identifiers_never_measurements():
    data = load_dataset(DataSpec(data=str(EXPORTS / "ids_and_measures.csv"), target="churn"))
    got = roles(data)
    assert got["customer_no"][0] == "dropped" and got["code"] == ("dropped", "ID (unique per row)")
    assert got["income"] == ("numeric", "numbers")  # unique floats: a measurement
    assert got["salary"] == ("numeric", "numbers")  # unique whole numbers, not named or counted as IDs
    kept = load_dataset(
        DataSpec(data=str(EXPORTS / "ids_and_measures.csv"), target="churn", numeric=("customer_no",))
    )
    assert roles(kept)["customer_no"] == ("numeric", "numbers (--numeric)")


def test_forcing_roles_and_refusals_name_the_option(tmp_path):
    path = EXPORTS / "sales_export.csv"
    data = load_dataset(DataSpec(data=str(path), target="Bought", categorical=("Margin",)))
    assert roles(data)["Margin"][0] == "categorical"
    with pytest.raises(UserError, match=r"--numeric column 'Region' has no cell that reads as a number"):
        load_dataset(DataSpec(data=str(path), target="Bought", numeric=("Region",)))
    with pytest.raises(UserError, match=r"given both to --numeric and to --categorical"):
        load_dataset(DataSpec(data=str(path), target="Bought", numeric=("Units",), categorical=("Units",)))
    with pytest.raises(UserError, match=r"no feature column is left") as error:
        load_dataset(DataSpec(data=str(EXPORTS / "no_features.csv"), target="status"))
    assert "--features" in error.value.hint
    mostly_text = tmp_path / "units.csv"
    cells = [f"{i} kg" if i % 2 else str(i) for i in range(30)]  # half the cells are not numbers
    mostly_text.write_text(
        "x,weight,y\n" + "".join(f"{i % 7},{c},{i % 3 % 2}\n" for i, c in enumerate(cells))
    )
    assert roles(load_dataset(DataSpec(data=str(mostly_text), target="y")))["weight"][0] == "dropped"
    forced = load_dataset(DataSpec(data=str(mostly_text), target="y", numeric=("weight",)))
    assert roles(forced)["weight"][0] == "numeric"
    assert "15 text cell(s) such as '1 kg' taken as missing" in roles(forced)["weight"][1]


def test_rare_classes_are_trained_on_and_named_once():
    data = load_dataset(DataSpec(data=str(EXPORTS / "rare_classes.csv"), target="species"))
    (warning,) = data.warnings
    assert "'rare' (1 row), 'scarce' (2 rows)" in warning
    assert set(data.source["classes_trained"]) == {"common", "rare", "scarce", "usual"}
    rare = data.classes.index("rare")
    assert rare in data.y_train and rare not in data.y_test


def test_stratified_split_is_scikit_learns():
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(3)
    for n, size in ((50, 0.2), (73, 0.3), (200, 0.15)):
        labels = rng.integers(0, 4, n)
        rows = np.arange(n) * 2
        mine = stratified_split(rows, labels, size, 7)
        theirs = train_test_split(rows, test_size=size, random_state=7, stratify=labels)
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_skewed_target_is_scaled_robustly_and_its_extremes_named():
    data = load_dataset(DataSpec(data=str(EXPORTS / "skewed_prices.csv"), target="price"))
    assert data.task == "regression" and data.target_scaler.kind == "log"
    assert "'$' stripped" in roles(data)["price"][1] and "log(1 + y)" in roles(data)["price"][1]
    (warning,) = data.warnings
    assert "4 extreme value(s), in data row(s) 8 (" in warning
    prices = np.array([float(v.strip("$").replace(",", "")) for v in raw("skewed_prices.csv", "price")])
    y = np.concatenate([data.y_train, data.y_val, data.y_test])
    np.testing.assert_allclose(np.sort(data.target_scaler.inverse_transform(y)), np.sort(prices), rtol=1e-5)
    robust = load_dataset(
        DataSpec(data=str(EXPORTS / "skewed_prices.csv"), target="price", target_transform="robust")
    )
    q1, median, q3 = np.percentile(
        prices[np.sort(np.concatenate([_rows(robust, "train"), _rows(robust, "val")]))], [25, 50, 75]
    )
    assert robust.target_scaler.shift[0] == pytest.approx(median) and robust.target_scaler.scale[
        0
    ] == pytest.approx(q3 - q1)


def _rows(data, part):
    """The file rows of a split, found by the target values (unique in this file)."""
    prices = np.array([float(v.strip("$").replace(",", "")) for v in raw("skewed_prices.csv", "price")])
    values = data.target_scaler.inverse_transform(getattr(data, f"y_{part}"))
    return np.array([int(np.argmin(np.abs(prices - v))) for v in values])


def test_target_scaling_round_trips_and_old_runs_load():
    y = np.array([1.0, 2.0, 3.0, 500.0])
    for kind in ("none", "standard", "robust", "log"):
        scaling = TargetScaling.fit(kind, y)
        np.testing.assert_allclose(scaling.inverse_transform(scaling.transform(y)), y, rtol=1e-5)
        assert TargetScaling.from_dict(scaling.to_dict()).to_dict() == scaling.to_dict()
    old = TargetScaling.from_dict({"kind": "standard", "shift": [2.0], "scale": [4.0]})
    assert old.inverse_transform(np.array([1.0]))[0] == 6.0


def test_na_in_numeric_target_is_missing_unless_classes_are_asked_for():
    target = encode_target(column(["1.5", "NA", "2.5", "NaN", "", "3.5"]), "y", None)
    assert target.task == "regression" and target.n_missing == 3
    classes = encode_target(column(["0", "1", "NA", "1", "0", "1"]), "y", "classification")
    assert classes.classes == (0, 1, "NA")
    money = encode_target(column(["$1,000", "$2,500.50", "NA", "$3,000", "$10"]), "y", None)
    assert money.values.tolist() == [1000, 2500.5, 3000, 10] and "'$' stripped" in money.how


def test_export_trains_and_predicts_through_the_cli(tmp_path):
    """The CLI prints the role table, trains, and predict reads a new export the same way."""
    (tmp_path / "sales.csv").write_bytes((EXPORTS / "sales_export.csv").read_bytes())
    fast = (
        "--epochs",
        "50",
        "--optimizer",
        "adam",
        "--lr",
        "0.02",
        "--quiet",
        "--device",
        "cpu",
        "--threads",
        "1",
    )
    result = run_cli("train", "--data", "sales.csv", "--target", "Bought", *fast, "--name", "s", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "numbers; thousands separator ',' removed; '$' stripped" in result.stdout
    predicted = run_cli("predict", "runs/s", "--data", "sales.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    rows = list(csv.DictReader(io.StringIO(predicted.stdout)))
    assert len(rows) == 60 and {r["predicted_Bought"] for r in rows} <= {"yes", "no"}
    bad = run_cli(
        "train", "--data", "sales.csv", "--target", "Bought", "--numeric", "Region", *fast, cwd=tmp_path
    )
    assert_user_error(bad, "--numeric column 'Region'", "--ignore")


def test_predict_reads_new_rows_in_the_training_format():
    """The saved format reads the cells of a file read as text (as predict reads it) to the same numbers."""
    from devicelab.data import Preprocessor, read_frame

    path = EXPORTS / "sales_export.csv"
    data = load_dataset(DataSpec(data=str(path), target="Bought"))
    saved = Preprocessor.from_dict(data.preprocessor.to_dict())
    frame = read_frame(path, text=True)
    typed = read_frame(path, target="Bought")
    for name in ("Annual Income", "Revenue", "Margin", "Change"):
        expected = to_numbers(typed.table.column(name), typed.decimal)[0].to_pylist()
        assert saved.prepare(name, frame.table.column(name), frame.decimal).to_pylist() == expected
    assert saved.number_formats["Revenue"]["currency"] == ["$"]
