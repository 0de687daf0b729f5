"""devicelab from Python: the package lists its API, a result fits on one screen and shows its role table."""

from __future__ import annotations

import pydoc
import subprocess
import sys

import devicelab
from csv_files import iris_csv

API = ("RunResult", "TrainConfig", "UserError", "train")


def test_dir_and_help_list_the_api_without_importing_torch():
    code = "import sys, devicelab; print(sorted(dir(devicelab))); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    listed, torch_loaded = out.splitlines()
    assert all(repr(name) in listed for name in (*API, "__version__")), listed
    assert "import_module" not in listed and "annotations" not in listed  # no helpers of the module itself
    assert torch_loaded == "False"  # `import devicelab` and dir() stay cheap
    text = pydoc.render_doc(devicelab, renderer=pydoc.plaintext)
    for name in API:
        assert f"{name}(" in text or f"class {name}" in text, name


def test_a_csv_run_prints_its_role_table_and_the_result_is_one_screen(tmp_path, capsys):
    path = iris_csv(tmp_path / "flowers.csv")
    config = devicelab.TrainConfig(
        data=str(path), target="species", epochs=30, log_every=10, device="cpu", threads=1
    )
    result = devicelab.train(config)
    printed = capsys.readouterr().out
    table = str(result.roles)
    assert table.splitlines()[0].split() == ["column", "role", "missing", "what", "devicelab", "does"]
    assert [line.split()[0] for line in table.splitlines()[1:]] == [
        "sepal_length", "sepal_width", "petal_length", "petal_width", "species"
    ]  # fmt: skip
    assert table in printed and "rows read from flowers" in printed
    assert repr(result.roles) == table  # echoed in a notebook: the same table
    shown = repr(result)
    assert len(shown) < 1000 and len(shown.splitlines()) <= 6, shown
    assert "flowers" in shown and f"{result.epochs_done} of 30 epochs" in shown
    assert f"test_accuracy {result.final['test_accuracy']:.4g}" in shown

    quiet = devicelab.train(devicelab.TrainConfig(**{**config.to_dict(), "quiet": True}))
    assert capsys.readouterr().out == ""
    assert str(quiet.roles) == table
