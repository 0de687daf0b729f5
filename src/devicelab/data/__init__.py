"""Tabular data: reading files (pyarrow), column roles, preprocessing steps, splits.

``load_dataset(spec)`` is the entry point; ``spec`` is a ``DataSpec`` or anything with the same fields
(a ``TrainConfig``). The data layer imports nothing from training.
"""

from devicelab.data.builtin import BUILTIN, load_builtin
from devicelab.data.columns import ColumnRole
from devicelab.data.dataset import (
    Dataset,
    find_column,
    load_dataset,
    require_two_columns,
)
from devicelab.data.describe import RoleTable, describe_rows, file_report, role_table
from devicelab.data.numbers import NumberFormat
from devicelab.data.read import NA_MARKERS, Frame, read_frame
from devicelab.data.spec import DataSpec
from devicelab.data.split import check_split_size
from devicelab.data.target import Target, encode_target
from devicelab.data.target_scaling import TargetScaling
from devicelab.data.transforms import Preprocessor, Scaler

__all__ = [
    "BUILTIN",
    "NA_MARKERS",
    "ColumnRole",
    "DataSpec",
    "Dataset",
    "Frame",
    "NumberFormat",
    "Preprocessor",
    "RoleTable",
    "Scaler",
    "Target",
    "TargetScaling",
    "check_split_size",
    "describe_rows",
    "encode_target",
    "file_report",
    "find_column",
    "load_builtin",
    "load_dataset",
    "read_frame",
    "require_two_columns",
    "role_table",
]
