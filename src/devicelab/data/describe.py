"""What devicelab did to a file, in words: the role table printed at the start of a run and saved with it,
and the one line that says how the rows were read, split and dropped."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from devicelab.data.columns import ColumnRole
from devicelab.data.sniff import delimiter_name
from devicelab.i18n import N_, _, translate
from devicelab.i18n.labels import role_label
from devicelab.report.tables import display_width

if TYPE_CHECKING:
    from devicelab.data.dataset import Dataset
    from devicelab.data.transforms import Preprocessor


DELIMITERS = {  # delimiter_name's words, for the catalogue
    "tab": N_("tab-separated"),
    "comma": N_("comma-separated"),
    "semicolon": N_("semicolon-separated"),
    "pipe": N_("pipe-separated"),
    "spaces": N_("spaces-separated"),
}


def describe_rows(dataset: Dataset) -> str:
    """One line: what was read, how it was split, which rows were dropped and why (in the user's language)."""
    source = dataset.source
    how = source.get("kind", "")
    if source.get("delimiter"):
        name = delimiter_name(source["delimiter"])
        how = f"{_(DELIMITERS.get(name, f'{name}-separated'))}, {source.get('encoding')}"
        how += _(", decimal comma") if source.get("decimal") == "," else ""
        how += f", {source['compression']}" if source.get("compression") else ""
    line = _(
        "{rows} rows read from {name} ({how}): {train} train, {val} validation, {test} test; {inputs} model inputs"
    ).format(
        rows=source.get("rows_read", len(dataset.x_train) + len(dataset.x_val) + len(dataset.x_test)),
        name=dataset.name,
        how=how,
        train=len(dataset.x_train),
        val=len(dataset.x_val),
        test=len(dataset.x_test),
        inputs=dataset.n_features,
    )
    dropped = [
        what.format(n=source[key])
        for key, what in (
            ("rows_target_missing", _("{n} without a target")),
            ("rows_dropna", _("{n} with missing cells (--dropna)")),
        )
        if source.get(key)
    ]
    return line + (_("; dropped {rows}").format(rows=_(" and ").join(dropped)) if dropped else "")


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
    if target.how:
        detail += f"; {target.how}"
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
    """The role table as text: one line per column (its words in the user's language)."""
    rows = [(_("column"), _("role"), _("missing"), _("what devicelab does"))]
    rows += [
        (r.name, role_label(r.role), str(r.missing) if r.missing else "", translate(r.detail)) for r in roles
    ]
    widths = [max(display_width(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        f"{_pad(row[0], widths[0])}  {_pad(row[1], widths[1])}  {_pad(row[2], widths[2], right=True)}  "
        f"{row[3]}".rstrip()
        for row in rows
    )


def _pad(text: str, width: int, right: bool = False) -> str:
    fill = " " * (width - display_width(text))
    return fill + text if right else text + fill


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
