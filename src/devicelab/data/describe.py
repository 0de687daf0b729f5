"""What devicelab did to a file, in words: the role table printed at the start of a run and saved with it,
and the one line that says how the rows were read, split and dropped."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from devicelab.data.columns import ColumnRole
from devicelab.data.read import delimiter_name

if TYPE_CHECKING:
    from devicelab.data.dataset import Dataset
    from devicelab.data.transforms import Preprocessor


def describe_rows(dataset: Dataset) -> str:
    """One line: what was read, how it was split, which rows were dropped and why."""
    source = dataset.source
    how = source.get("kind", "")
    if source.get("delimiter"):
        how = f"{delimiter_name(source['delimiter'])}-separated, {source.get('encoding')}"
        how += ", decimal comma" if source.get("decimal") == "," else ""
        how += f", {source['compression']}" if source.get("compression") else ""
    line = (
        f"{source.get('rows_read', len(dataset.x_train) + len(dataset.x_val) + len(dataset.x_test))} rows "
        f"read from {dataset.name} ({how}): {len(dataset.x_train)} train, {len(dataset.x_val)} validation, "
        f"{len(dataset.x_test)} test; {dataset.n_features} model inputs"
    )
    dropped = [
        f"{source[key]} {what}"
        for key, what in (
            ("rows_target_missing", "without a target"),
            ("rows_dropna", "with missing cells (--dropna)"),
        )
        if source.get(key)
    ]
    return line + (f"; dropped {' and '.join(dropped)}" if dropped else "")


def target_role(name: str, target, asked: str | None) -> ColumnRole:
    numbers = target.task == "regression" or all(isinstance(c, int | float) for c in target.classes)
    other = "classification" if target.task == "regression" else "regression"
    settle = f" (inferred; --task {other} to change)" if asked is None and numbers else ""
    if target.task == "classification":
        shown = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in target.classes[:6])
        more = ", ..." if len(target.classes) > 6 else ""
        detail = f"classification{settle}: {len(target.classes)} classes ({shown}{more})"
    else:
        detail = f"regression{settle}"
    if target.n_missing:
        detail += f"; {target.n_missing} row(s) without a target dropped"
    return ColumnRole(name, "target", detail, target.n_missing, "target")


def with_encoding(roles, preprocessor: Preprocessor):
    """The roles, each feature's detail completed with what its encoding became."""
    for role in roles:
        name = role.name
        extra = ""
        if role.role == "categorical":
            how = "one-hot" if name in preprocessor.one_hot else "embedding"
            if how == "embedding":
                slots = len(preprocessor.categories.levels[name]) + 2
                how += f" {slots}x{preprocessor.embeddings[preprocessor.embedded.index(name)][1]}"
            extra = f", {how}; unseen levels -> unknown"
            if preprocessor.categories.missing.get(name):
                extra += "; missing -> its own level"
        elif role.role == "numeric":
            if role.kind == "datetime":
                parts = preprocessor.dates.columns.get(name, {}).get("parts", [])
                extra = f" -> {', '.join(parts) or 'no varying part'}"
            numbers = (
                [name]
                if role.kind == "numeric"
                else [f"{name}_{p}" for p in preprocessor.dates.columns[name]["parts"]]
            )
            medians = [preprocessor.fill.medians[n] for n in numbers if n in preprocessor.fill.indicators]
            if medians:
                extra += f"; missing -> median {medians[0]:g} + indicator"
        if extra:
            role = replace(role, detail=role.detail + extra)
        yield role


def dropped_summary(roles) -> str:
    return "; ".join(f"{r.name} ({r.detail})" for r in roles[:6] if r.role == "dropped")


def role_table(roles: tuple[ColumnRole, ...] | list[ColumnRole]) -> str:
    """The role table as text: one line per column."""
    rows = [("column", "role", "missing", "what devicelab does")]
    rows += [(r.name, r.role, str(r.missing) if r.missing else "", r.detail) for r in roles]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip()
        for row in rows
    )


def file_report(dataset: Dataset) -> str:
    """What a run says before it trains on a file: how the rows were read and split, and the role table."""
    return f"{describe_rows(dataset)}\n{role_table(dataset.roles)}\n"


class RoleTable(tuple):
    """The roles of the data's columns (``ColumnRole`` each), shown as the role table when printed or echoed
    (``result.roles`` in a notebook)."""

    __slots__ = ()

    def __str__(self) -> str:
        return role_table(self)

    __repr__ = __str__
