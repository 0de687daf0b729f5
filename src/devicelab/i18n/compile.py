"""Compile the ``.po`` catalogue sources into the ``.mo`` files gettext reads (no tools needed).

``python -m devicelab.i18n.compile`` rewrites every ``locale/*/LC_MESSAGES/devicelab.mo``; a test checks that
the committed ``.mo`` files are what this makes of their ``.po``. Handles the subset of the PO format the
catalogue uses: ``msgctxt`` (a word that reads differently in one place, ``pgettext``), plural forms
(``msgid_plural`` / ``msgstr[n]``); fuzzy entries
and empty translations are left out, as ``msgfmt`` does.
"""

from __future__ import annotations

import ast
import re
import struct
import sys
from pathlib import Path

import devicelab
from devicelab.i18n import DOMAIN, LOCALE_DIR


def parse_po(text: str) -> dict[str, str]:
    """msgid -> msgstr (plural forms: ``singular\\0plural`` -> ``form0\\0form1...``), header included."""
    entries: dict[str, str] = {}
    fields: dict[str, str] = {}
    key: str | None = None
    fuzzy = False

    def flush() -> None:
        nonlocal fields, fuzzy
        if "msgid" in fields:
            msgid = fields["msgid"]
            if "msgctxt" in fields:  # gettext's key for a message in a context
                msgid = f"{fields['msgctxt']}\x04{msgid}"
            if "msgid_plural" in fields:
                msgid += "\0" + fields["msgid_plural"]
                forms = [fields[k] for k in sorted(k for k in fields if k.startswith("msgstr["))]
                msgstr = "\0".join(forms)
            else:
                msgstr = fields.get("msgstr", "")
            if msgstr.strip("\0") and not (fuzzy and msgid):
                entries[msgid] = msgstr
        fields, fuzzy = {}, False

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        if not line or line.startswith("#"):
            continue
        if line.startswith('"'):
            if key is None:
                raise ValueError(f"line {number}: a string with no msgid/msgstr before it")
            fields[key] += ast.literal_eval(line)
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("msgid", "msgctxt") and "msgid" in fields and key != "msgctxt":
            flush()
        key = keyword
        fields[key] = ast.literal_eval(rest)
    flush()
    return entries


def build_mo(entries: dict[str, str]) -> bytes:
    """The GNU ``.mo`` format: header, two offset tables, then the strings, keys sorted."""
    keys = sorted(entries)
    ids = [k.encode() for k in keys]
    strs = [entries[k].encode() for k in keys]
    n = len(keys)
    start = 7 * 4 + 16 * n
    offsets, blob = [], b""
    for s in ids:
        offsets.append((len(s), start + len(blob)))
        blob += s + b"\0"
    for s in strs:
        offsets.append((len(s), start + len(blob)))
        blob += s + b"\0"
    header = struct.pack("<7I", 0x950412DE, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, 0)
    table = b"".join(struct.pack("<2I", length, offset) for length, offset in offsets)
    return header + table + blob


MARKERS = ("_", "N_", "ngettext", "pgettext")


def extract(root: Path | None = None) -> dict[str, list[str]]:
    """Every message id in the package's code: the literal first argument of ``_()``, ``N_()`` and
    ``ngettext()`` (both forms: ``singular\0plural``), with where it is used."""
    root = root or Path(devicelab.__file__).parent
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS
            ):
                continue
            args = [
                a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
                for a in node.args
            ]
            msgid = (
                ("\0" if node.func.id == "ngettext" else "\x04").join(args[:2])
                if node.func.id in ("ngettext", "pgettext") and None not in args[:2]
                else args[0]
                if args and node.func.id not in ("ngettext", "pgettext")
                else None
            )
            if msgid:
                found.setdefault(msgid, []).append(f"{path.relative_to(root.parent)}:{node.lineno}")
        if "i18n" not in path.parts:
            for msgid, line in error_templates(tree):
                found.setdefault(msgid, []).append(f"{path.relative_to(root.parent)}:{line}")
    return found


def error_templates(tree: ast.AST) -> list[tuple[str, int]]:
    """The message and hint of every ``UserError(...)`` as templates: an f-string's values become ``{v0}``,
    ``{v1}``... in order. ``devicelab.i18n.translate`` matches a raised error against them where the CLI
    prints it, so the modules that raise errors stay as they are."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "UserError":
            parts = node.args[:1] + [k.value for k in node.keywords if k.arg == "hint"]
            for part in parts:
                template = _template(part)
                if template and len(_FIXED.sub("", template).strip()) >= 6:  # not a bare "{v0}"
                    found.append((template, node.lineno))
    return found


_FIXED = re.compile(r"\{v\d+\}")


def _template(node: ast.AST, counter: list[int] | None = None) -> str | None:
    """A string expression as a template, or None when it is not made of literals and f-strings."""
    counter = counter if counter is not None else [0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}")
    if isinstance(node, ast.JoinedStr):
        out = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                out.append(str(value.value).replace("{", "{{").replace("}", "}}"))
            else:
                out.append(f"{{v{counter[0]}}}")
                counter[0] += 1
        return "".join(out)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _template(node.left, counter)
        right = _template(node.right, counter)
        return None if left is None or right is None else left + right
    return None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def write_po(path: Path, translations: dict[str, str], messages: dict[str, list[str]], header: str) -> None:
    """The catalogue source: every message id in the code, sorted, with its translation ('' = missing)."""
    lines = [header.rstrip("\n"), ""]
    for msgid in sorted(messages):
        lines.append("#: " + " ".join(messages[msgid][:3]))
        if "\x04" in msgid:
            context, text = msgid.split("\x04")
            lines += [f"msgctxt {_quote(context)}", f"msgid {_quote(text)}"]
            lines.append(f"msgstr {_quote(translations.get(msgid, ''))}")
        elif "\0" in msgid:
            singular, plural = msgid.split("\0")
            forms = translations.get(msgid, "").split("\0")
            lines += [f"msgid {_quote(singular)}", f"msgid_plural {_quote(plural)}"]
            lines += [f"msgstr[{i}] {_quote(form)}" for i, form in enumerate(forms)]
        else:
            lines += [f"msgid {_quote(msgid)}", f"msgstr {_quote(translations.get(msgid, ''))}"]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def po_files() -> list[Path]:
    return sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def main() -> int:
    if "--update" in sys.argv:  # add the message ids the code uses now, keep the translations there are
        messages = extract()
        for po in po_files():
            text = po.read_text(encoding="utf-8")
            header = text[: text.index("\n\n") + 1]
            write_po(po, parse_po(text), messages, header)
    for po in po_files():
        mo = po.with_suffix(".mo")
        mo.write_bytes(build_mo(parse_po(po.read_text(encoding="utf-8"))))
        print(f"{po} -> {mo}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
