"""Reading a user's CSV or Parquet file into a pyarrow Table, with one clear error per bad input.

pyarrow parses the cells (no Python object per cell). Around it, this module does what real files need:
byte-order marks and legacy encodings (UTF-16/32 with a BOM, Windows-1252), gzip/zstd/bz2 compression,
a sniffed delimiter (``, ; tab |`` or runs of spaces), headers in double or single quotes, R's header
without a name for the row-name column, decimal commas, and errors that name the file line.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import hashlib
import io
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from devicelab.data.sniff import (
    SAMPLE_BYTES,
    SPACE_TOKEN,
    SPACES,
    Layout,
    check_header,
    parse_error,
    sniff,
)
from devicelab.errors import UserError

# Cells that mean "missing" in a feature column (pyarrow's defaults plus "?" and "None"); in a target
# only empty cells and the markers the user declares (--na-values) are missing.
NA_MARKERS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
    "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null", "none", "?", "NAN", "Nan", "na",
)  # fmt: skip
PIECE_BYTES = 1 << 22  # a CSV is parsed in pieces of about this size (see _read_pieces)
# A piece smaller than this is parsed on the calling thread: threads gain nothing there, and arrow's thread pool
# alive at interpreter exit can abort the process after its work is done ("terminate called without an active
# exception", apache/arrow#34314: seen once in ~930 short CLI runs that read small files).
THREADED_BYTES = 1 << 20

_BOMS = (  # UTF-32 before UTF-16, whose little-endian mark begins UTF-32's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_COMPRESSED = {b"\x1f\x8b": ("gzip", gzip.decompress), b"BZh": ("bz2", bz2.decompress)}
_ZSTD = b"\x28\xb5\x2f\xfd"
_JSON = re.compile(r'\s*(\{\s*["}]|\[\s*[\[{"\]])')  # an object, or an array of objects, arrays, strings
_NOT_TABLE = {
    b"PK\x03\x04": ("a zip archive or an Excel workbook", "export it as CSV (File > Save As > CSV UTF-8)")
}


@dataclass(frozen=True)
class Frame:
    """A file read into a pyarrow Table, with how it was read."""

    path: Path
    table: pa.Table
    format: str  # "csv" | "parquet"
    delimiter: str | None  # None for Parquet; " " for runs of spaces
    encoding: str
    sha256: str
    decimal: str = "."
    compression: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.table.column_names)

    def describe(self) -> dict:
        return {
            "kind": self.format,
            "path": str(self.path.resolve()),
            "sha256": self.sha256,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "decimal": self.decimal,
            "compression": self.compression,
        }


def read_frame(
    path: str | Path, *, target: str | None = None, text: bool = False, na_values: tuple[str, ...] = ()
) -> Frame:
    """Read ``path`` (CSV, compressed CSV or Parquet). ``target``: that column is kept as text, so class
    labels such as "None" or "NA" stay labels. ``text``: every column as text (for predict, which writes
    the rows back as they were). ``na_values``: cells that mean missing besides NA_MARKERS. Raises
    UserError naming what is wrong."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"file {str(path)!r} does not exist", hint="check the path given to --data")
    if not path.is_file():
        raise UserError(f"{str(path)!r} is not a file", hint="give --data a CSV or Parquet file")
    hasher = _Hasher(path)
    try:
        with open(path, "rb") as f:
            head = f.read(SAMPLE_BYTES)
    except OSError as error:
        raise UserError(
            f"cannot read {path} ({error.strerror})", hint="check the file's permissions"
        ) from None
    if head.startswith(b"PAR1"):
        return _read_parquet(path, hasher, text)
    raw: bytes | None = None
    compression = None
    for magic, (name, decompress) in _COMPRESSED.items():
        if head.startswith(magic):
            raw, compression = _decompress(path, name, decompress), name
    if head.startswith(_ZSTD):
        raw, compression = _decompress(path, "zstd", None), "zstd"
    if raw is not None:
        head = raw[:SAMPLE_BYTES]
    what, fix = next((kind for magic, kind in _NOT_TABLE.items() if head.startswith(magic)), (None, None))
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), None)
    if what is None and encoding is None and b"\x00" in head:
        what, fix = "binary (it has NUL bytes)", "give a CSV text file; UTF-16 text needs a byte-order mark"
    if what:
        raise UserError(f"{path} is not a CSV text file: it is {what}", hint=fix)
    if encoding in ("utf-32", "utf-16"):  # pyarrow reads UTF-8: decode here, hand it UTF-8 bytes
        raw = _recode(path, raw if raw is not None else path.read_bytes(), encoding)
        head = raw[:SAMPLE_BYTES]
    elif encoding is None:
        encoding = "utf-8" if _is_utf8_prefix(head) else "cp1252"
        if encoding == "cp1252":
            raw = _recode(path, raw if raw is not None else path.read_bytes(), "cp1252")
            head = raw[:SAMPLE_BYTES]
    sample = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if _JSON.match(sample):
        raise UserError(
            f"{path} is JSON, not CSV (it starts with {sample.lstrip()[:1]!r})",
            hint="convert it to CSV, e.g. pandas.read_json(path).to_csv('rows.csv', index=False)",
        )
    layout = sniff(path, sample)
    try:
        table = _read_csv(raw if raw is not None else path, layout, target, text, na_values)
    except _NotUtf8:
        encoding = "cp1252"
        raw = _recode(path, raw if raw is not None else path.read_bytes(), "cp1252")
        table = _read_csv(raw, layout, target, text, na_values)
    except pa.ArrowInvalid as error:
        raise parse_error(path, raw, encoding, layout, error) from None
    if table.num_rows == 0:
        raise UserError(f"{path} has a header but no data rows", hint="add rows below the header")
    table = table.rename_columns(list(layout.columns))
    return Frame(
        path, table, "csv", layout.delimiter, encoding.replace("-sig", ""), hasher.hexdigest(),
        layout.decimal, compression,
    )  # fmt: skip


class _NotUtf8(Exception):
    pass


class _Hasher:
    """The file's sha256, computed on a thread while pyarrow parses (both release the GIL)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._digest = hashlib.sha256()
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 22):
                    self._digest.update(chunk)
        except OSError as error:
            self._error = error

    def hexdigest(self) -> str:
        """The digest of the whole file; a UserError when a read failed part-way (a partial digest
        stored in a run folder would make --resume refuse the same file later, or accept another)."""
        self._thread.join()
        if self._error is not None:
            raise UserError(
                f"could not read all of {self._path} ({self._error.strerror or self._error})",
                hint="check that the file is readable and not being written, then try again",
            )
        return self._digest.hexdigest()


def _decompress(path: Path, name: str, decompress) -> bytes:
    try:
        if decompress is None:  # zstd, through pyarrow's codec
            with pa.input_stream(str(path), compression="zstd") as stream:
                return stream.read()
        return decompress(path.read_bytes())
    except (OSError, EOFError, ValueError, pa.ArrowException) as error:
        raise UserError(
            f"{path} looks {name}-compressed but cannot be decompressed ({str(error)[:80]})",
            hint="the file is damaged or truncated; compress it again, or give the plain CSV",
        ) from None


def _is_utf8_prefix(head: bytes) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _recode(path: Path, raw: bytes, encoding: str) -> bytes:
    """``raw`` in ``encoding`` as UTF-8 bytes (Windows-1252 falls back to Latin-1, which decodes any byte)."""
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        if encoding != "cp1252":
            raise UserError(
                f"{path} starts with a {encoding.upper()} byte-order mark but byte {error.start} is not "
                f"{encoding.upper()}",
                hint="save the file again as UTF-8 CSV",
            ) from None
        text = raw.decode("latin-1")
    return text.encode("utf-8")


def _read_csv(
    source: bytes | Path, layout: Layout, target: str | None, text: bool, na_values: tuple[str, ...] = ()
) -> pa.Table:
    import pyarrow.csv as pacsv

    if layout.delimiter == SPACES:  # pyarrow takes one character: runs of spaces become one tab
        data = source if isinstance(source, bytes) else source.read_bytes()
        lines = data.decode("utf-8", errors="strict").lstrip("\ufeff").splitlines()
        source = "\n".join("\t".join(SPACE_TOKEN.findall(line)) for line in lines).encode()
    column_types = {}
    if text:
        column_types = dict.fromkeys(layout.raw_columns, pa.string())
    elif target is not None:
        by_clean = dict(zip(layout.columns, layout.raw_columns, strict=True))
        if target in by_clean:
            column_types[by_clean[target]] = pa.string()
    delimiter = "\t" if layout.delimiter == SPACES else layout.delimiter
    options = (
        pacsv.ReadOptions(column_names=list(layout.raw_columns), skip_rows=layout.skip_rows),
        pacsv.ParseOptions(delimiter=delimiter, quote_char=layout.quote),
        pacsv.ConvertOptions(
            column_types=column_types,
            null_values=[*NA_MARKERS, *na_values],
            strings_can_be_null=False,
            decimal_point=layout.decimal,
        ),
    )
    try:
        table = _read_pieces(source, options)
    except pa.ArrowInvalid as error:
        if "utf8" in str(error).lower():
            raise _NotUtf8 from None
        # a column typed from the first piece (whole numbers, say) has other values later, or a quoted
        # cell holds a newline: the whole-file reader infers types over every row and allows those
        options[1].newlines_in_values = True
        try:
            table = pacsv.read_csv(_stream(source), *options)
        except pa.ArrowInvalid as error:
            if "utf8" in str(error).lower():
                raise _NotUtf8 from None
            raise
    if any(pa.types.is_binary(f.type) for f in table.schema):  # pyarrow's type for text that is not UTF-8
        raise _NotUtf8
    return table


def _read_pieces(source: bytes | Path, options) -> pa.Table:
    """The CSV read in pieces of PIECE_BYTES cut at line ends, each by ``read_csv`` with the column types
    of the first piece: about the speed of one ``read_csv`` and the memory of a streamed read (the whole
    file's ``read_csv`` holds ~3x the table; ``open_csv`` streams but parses ~40% slower)."""
    import pyarrow.csv as pacsv

    read, parse, convert = options
    tables: list[pa.Table] = []
    rest = b""
    with _stream(source) if isinstance(source, bytes) else open(source, "rb") as f:
        while chunk := f.read(PIECE_BYTES) or rest:
            data, rest = _cut(rest + chunk) if chunk is not rest else (rest, b"")
            if not data.strip():
                continue
            first = not tables
            types = convert.column_types if first else {f.name: f.type for f in tables[0].schema}
            piece = (
                pacsv.ReadOptions(
                    column_names=read.column_names,
                    skip_rows=read.skip_rows if first else 0,
                    use_threads=len(data) >= THREADED_BYTES,
                ),
                parse,
                pacsv.ConvertOptions(
                    column_types=types,
                    null_values=convert.null_values,
                    strings_can_be_null=convert.strings_can_be_null,
                    decimal_point=convert.decimal_point,
                ),
            )
            tables.append(pacsv.read_csv(io.BytesIO(data), *piece))
    if not tables:  # a header only
        return pacsv.read_csv(_stream(source), *options)
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _cut(data: bytes) -> tuple[bytes, bytes]:
    """``(whole lines, the partial last line)``; a piece without \\n (\\r line ends) waits for more."""
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


def _stream(source: bytes | Path):
    return io.BytesIO(source) if isinstance(source, bytes) else str(source)


def _read_parquet(path: Path, hasher: _Hasher, text: bool) -> Frame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, use_threads=path.stat().st_size >= THREADED_BYTES)
    except (pa.ArrowException, OSError) as error:
        raise UserError(
            f"{path} cannot be read as Parquet ({str(error).splitlines()[0][:100]})",
            hint="the file is damaged or truncated; write it again",
        ) from None
    columns = tuple(str(name).strip() or f"unnamed_{i + 1}" for i, name in enumerate(table.column_names))
    check_header(path, columns)
    if table.num_rows == 0:
        raise UserError(f"{path} has no rows", hint="write the rows to the Parquet file")
    table = table.rename_columns(list(columns))
    if text:
        table = pa.table({name: _as_text(table.column(name)) for name in columns})
    return Frame(path, table, "parquet", None, "parquet", hasher.hexdigest())


def _as_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow.compute as pc

    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return pc.fill_null(column.cast(pa.string()), "")
