"""Spreadsheets (CSV, .xlsx) and Hugging Face dataset files as examples: read, preview, map, import.

Issue 27: a support lead with an Excel sheet of tickets must be able to start. Every row gets the
same verdict as a JSONL line (row number, stable code from `validation.CODES`), bad rows go to
quarantine as JSON messages so the quarantine editor can fix them. Two rules from the issue:
text encodings are detected or asked, never guessed silently (UTF-8 with or without BOM is
recognised; anything else is refused until the user names it), and formulas are read as the value
the spreadsheet saved, never evaluated.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import sqlite_utils

from core.curation import importing, validation
from core.curation.datasets import Dataset, DatasetError
from core.curation.validation import LineProblem, ParsedLine, ParseResult, TokenCounter
from core.models import templating
from core.platform import permissions
from core.platform.store import audit, get_setting, set_setting, transaction

# Encodings a user may name, with the words the report uses for them.
ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with BOM", "cp1252": "Windows-1252 (cp1252)"}
SPREADSHEET_SUFFIXES = (".csv", ".xlsx")
HF_SUFFIXES = (".parquet", ".arrow", ".json", ".jsonl")
PREVIEW_ROWS = 5
_MAPPING_KEY = "import_mapping.{dataset_id}"  # settings key: the mapping remembered per dataset


@dataclass(frozen=True)
class ColumnMapping:
    """Which spreadsheet column becomes which part of an example."""
    user: str
    assistant: str
    system: str = ""
    tags: str = ""  # comma-separated tags in one cell
    split: str = ""  # train or heldout per row; empty cells take the import's split
    category: str = ""  # stored as the tag "category:<value>" (examples have tags, not categories)

    def __post_init__(self) -> None:
        if not self.user.strip() or not self.assistant.strip():
            raise DatasetError("Map one column to user and one to assistant (for example "
                               "--map user=question,assistant=answer).")
        used = [c for c in self.columns().values()]
        twice = sorted({c for c in used if used.count(c) > 1})
        if twice:
            raise DatasetError(f"Column '{twice[0]}' is mapped twice; map each column to one part.")

    def columns(self) -> dict[str, str]:
        """Part -> column, for the parts that are mapped."""
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def parse(cls, text: str) -> ColumnMapping:
        """`user=question,assistant=answer[,system=..,tags=..,split=..,category=..]`."""
        parts: dict[str, str] = {}
        known = [f.name for f in fields(cls)]
        for item in (p for p in text.split(",") if p.strip()):
            key, sep, column = item.partition("=")
            key = key.strip()
            if not sep or key not in known:
                raise DatasetError(f"Cannot read mapping '{item.strip()}': write PART=COLUMN with PART one of "
                                   f"{', '.join(known)}.")
            parts[key] = column.strip()
        return cls(**{"user": "", "assistant": "", **parts})

    def to_text(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.columns().items())


@dataclass(frozen=True)
class TableRow:
    number: int  # the spreadsheet's row number (the header is row 1)
    values: tuple[str, ...]  # one text per column of the table
    formulas_without_value: tuple[str, ...] = ()  # columns whose formula has no saved value


@dataclass(frozen=True)
class Table:
    """A spreadsheet read as text cells, with how it was read."""
    columns: tuple[str, ...]
    rows: tuple[TableRow, ...]
    blank: int
    note: str  # the encoding used and why, or the sheet read

    def preview(self, n: int = PREVIEW_ROWS) -> list[dict[str, str]]:
        return [{"row": str(r.number), **dict(zip(self.columns, r.values))} for r in self.rows[:n]]


# ----------------------------------------------------------------------------- reading

def decode(data: bytes, encoding: str = "") -> tuple[str, str]:
    """The text and a note saying which encoding was used and why. Without `encoding`, UTF-8 (with
    or without a BOM) is recognised; any other bytes are refused with the option to pass, because
    cp1252, Latin-1 and other code pages cannot be told apart from the bytes alone."""
    if encoding:
        if encoding not in ENCODINGS:
            raise DatasetError(f"Unknown encoding '{encoding}'; choose one of {', '.join(ENCODINGS)}.")
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise DatasetError(f"The file is not {ENCODINGS[encoding]}: byte 0x{data[exc.start]:02x} at byte "
                               f"{exc.start + 1} cannot be read that way.") from exc
        return text.removeprefix("\ufeff"), f"read as {ENCODINGS[encoding]} (as asked)"
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "read as UTF-8 with BOM (detected from the byte-order mark)"
        except UnicodeDecodeError as exc:
            raise DatasetError(f"The file starts with a UTF-8 byte-order mark but byte {exc.start + 4} is not "
                               "UTF-8; save it again as UTF-8.") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"The file is not UTF-8 (byte 0x{data[exc.start]:02x} at byte {exc.start + 1}), and other encodings "
            "cannot be told apart reliably. If it was saved by Excel on Western-European Windows it is "
            "probably Windows-1252: pass --encoding cp1252 (on the page: choose the encoding), or save it "
            "as 'CSV UTF-8'.") from exc
    ascii_only = text.isascii()
    return text, "read as UTF-8 (" + ("plain ASCII, the same in every supported encoding)" if ascii_only
                                      else "detected: every byte is valid UTF-8)")


def read_csv(data: bytes, encoding: str = "") -> Table:
    """A CSV file with a header row; every cell as text (no number or date conversion)."""
    import pandas as pd

    _check_size(len(data))
    text, note = decode(data, encoding)
    try:
        # header=None keeps duplicate header names visible (pandas would rename them), and
        # skip_blank_lines=False keeps row numbers equal to the spreadsheet's.
        frame = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False,
                            na_filter=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError("The CSV file is empty.") from exc
    except pd.errors.ParserError as exc:
        raise DatasetError(f"The CSV file cannot be read: {exc}. A cell that contains commas or line breaks "
                           "must be in double quotes.") from exc
    grid = frame.values.tolist()
    return _table(grid[0], [(i + 1, row, ()) for i, row in enumerate(grid[1:], start=1)], note)


def read_xlsx(data: bytes, sheet: str = "") -> Table:
    """The first (or the named) sheet of an .xlsx workbook. Formula cells give the value Excel saved
    with the file (openpyxl data_only); a formula without one is reported, never computed here."""
    import openpyxl
    from openpyxl.utils import get_column_letter
    from openpyxl.utils.exceptions import InvalidFileException

    _check_size(len(data))
    try:
        values_book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        formula_book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except (InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise DatasetError(f"The file is not an .xlsx workbook openpyxl can read: {exc}") from exc
    names = values_book.sheetnames
    if sheet and sheet not in names:
        raise DatasetError(f"No sheet '{sheet}'; the workbook has {', '.join(names)}.")
    name = sheet or names[0]
    grid: list[list[str]] = []
    formula_rows: list[set[int]] = []
    for value_row, formula_row in zip(values_book[name].iter_rows(values_only=True),
                                      formula_book[name].iter_rows()):
        grid.append(["" if v is None else str(v) for v in value_row])
        formula_rows.append({i for i, (v, cell) in enumerate(zip(value_row, formula_row))
                             if v is None and getattr(cell, "data_type", "") == "f"})
    values_book.close()
    formula_book.close()
    if not grid:
        raise DatasetError(f"Sheet '{name}' is empty.")
    width = max(len(r) for r in grid)
    header = [h or get_column_letter(i + 1) for i, h in enumerate(grid[0] + [""] * (width - len(grid[0])))]
    rows = []
    for number, (row, missing) in enumerate(zip(grid[1:], formula_rows[1:]), start=2):
        rows.append((number, row + [""] * (width - len(row)), tuple(header[i] for i in sorted(missing))))
    note = f"sheet '{name}'" + (f" (of {len(names)}: {', '.join(names)})" if len(names) > 1 else "")
    return _table(header, rows, note + "; formulas read as their saved values")


def read_spreadsheet(data: bytes, name: str, *, encoding: str = "", sheet: str = "") -> Table:
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return read_csv(data, encoding)
    if suffix == ".xlsx":
        return read_xlsx(data, sheet)
    raise DatasetError(f"'{name}' is not a spreadsheet this studio reads ({', '.join(SPREADSHEET_SUFFIXES)}).")


def _check_size(size: int) -> None:
    if size > importing.MAX_IMPORT_BYTES:
        raise DatasetError(f"The file is {size / 2**20:.0f} MB; the limit is "
                           f"{importing.MAX_IMPORT_BYTES // 2**20} MB. Split it into smaller files.")


def _table(header: list[Any], rows: Iterable[tuple[int, list[Any], tuple[str, ...]]], note: str) -> Table:
    columns = tuple(str(h).strip() for h in header)
    seen: dict[str, int] = {}
    for i, column in enumerate(columns, start=1):
        if column in seen:
            raise DatasetError(f"Column name '{column}' appears twice (columns {seen[column]} and {i}); rename one.")
        seen[column] = i
    kept, blank = [], 0
    for number, values, missing in rows:
        texts = tuple(str(v) for v in values)
        if not any(t.strip() for t in texts) and not missing:
            blank += 1
            continue
        kept.append(TableRow(number, texts, missing))
    return Table(columns, tuple(kept), blank, note)


# ----------------------------------------------------------------------------- rows to examples

def parse_rows(table: Table, mapping: ColumnMapping) -> ParseResult:
    """Each row as a verdict: messages built from the mapped columns, checked like a JSONL line."""
    missing = [c for c in mapping.columns().values() if c not in table.columns]
    if missing:
        raise DatasetError(f"No column '{missing[0]}' in the file; its columns are {', '.join(table.columns)}.")
    index = {c: i for i, c in enumerate(table.columns)}
    result = ParseResult(blank=table.blank)
    for row in table.rows:
        def cell(part: str, row: TableRow = row) -> str:
            column = getattr(mapping, part)
            return row.values[index[column]] if column else ""

        messages = [{"role": role, "content": cell(role)} for role in ("system", "user", "assistant")
                    if role != "system" or cell("system").strip()]
        raw = json.dumps({"messages": messages}, ensure_ascii=False)  # the quarantine editor reads this
        problems = [LineProblem(row.number, "formula_without_value",
                                f"row {row.number}: column '{c}' holds a formula with no saved value; open the "
                                "file in Excel and save it (Excel stores the value), or type the value")
                    for c in row.formulas_without_value if c in mapping.columns().values()]
        split = cell("split").strip().lower()
        if split and split not in ("train", "heldout"):
            problems.append(LineProblem(row.number, "unknown_split",
                                        f"row {row.number}: split '{cell('split')}' is not train or heldout"))
        problems += validation.check_messages(messages, row.number, unit="row")
        tags = [t.strip() for t in cell("tags").split(",") if t.strip()]
        if cell("category").strip():
            tags.append(f"category:{cell('category').strip()}")
        result.lines.append(ParsedLine(row.number, raw, None if problems else messages, "spreadsheet",
                                       tuple(problems), split=split, tags=tuple(tags)))
    result.formats = {"spreadsheet": len(result.lines)} if result.lines else {}
    return result


def remembered_mapping(db: sqlite_utils.Database, dataset_id: int) -> ColumnMapping | None:
    """The mapping last used to import into this dataset, if any."""
    text = get_setting(db, _MAPPING_KEY.format(dataset_id=dataset_id))
    return ColumnMapping(**json.loads(text)) if text else None


def import_spreadsheet(db: sqlite_utils.Database, dataset: Dataset, table: Table, mapping: ColumnMapping, *,
                       source: str = "", author: str = "", split: str = "train",
                       count_tokens: TokenCounter | None = None,
                       max_length: int = templating.DEFAULT_MAX_LENGTH) -> importing.ImportReport:
    """Import a read spreadsheet with a column mapping, and remember the mapping for this dataset."""
    permissions.require(author, "import_examples")
    parsed = parse_rows(table, mapping)
    report = importing.import_parsed(db, dataset, parsed, source=source, author=author, split=split,
                                     count_tokens=count_tokens, max_length=max_length, unit="row")
    report.notes.append(table.note)
    with transaction(db):
        set_setting(db, _MAPPING_KEY.format(dataset_id=dataset.id), json.dumps(asdict(mapping)))
        audit(db, author, "remember_import_mapping", "dataset", dataset.id, {"mapping": mapping.to_text()})
    return report


# ----------------------------------------------------------------------------- Hugging Face files

def read_hf(path: Path, split: str = "", name: str = "") -> tuple[ParseResult, str]:
    """Rows of a local Hugging Face dataset (a folder from `save_to_disk` or with data files and a
    card, or one .parquet/.arrow/.json/.jsonl file), offline, as verdicts; and a note naming the
    split read. Rows in `messages`, ShareGPT `conversations` or Alpaca `instruction/input/output`."""
    import datasets as hf

    if not path.exists():
        raise DatasetError(f"No file or folder {path}.")
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    _check_size(size)
    with tempfile.TemporaryDirectory(prefix="studio-hf-") as cache:  # never the user's shared cache
        loaded: Any
        suffix = path.suffix.lower()
        if path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists()):
            loaded = hf.load_from_disk(str(path), keep_in_memory=True)
        elif path.is_dir():
            loaded = hf.load_dataset(str(path), cache_dir=cache, keep_in_memory=True)
        elif suffix == ".arrow":
            loaded = hf.Dataset.from_file(str(path), in_memory=True)
        elif suffix in (".parquet", ".json", ".jsonl"):
            builder = "parquet" if suffix == ".parquet" else "json"
            loaded = hf.load_dataset(builder, data_files={"train": str(path)}, cache_dir=cache, keep_in_memory=True)
        else:
            raise DatasetError(f"'{path.name}' is not a Hugging Face dataset file ({', '.join(HF_SUFFIXES)}) "
                               "or folder.")
        if isinstance(loaded, hf.DatasetDict):
            names = list(loaded)
            if split and split not in names:
                raise DatasetError(f"No split '{split}'; the dataset has {', '.join(names)}.")
            if not split and len(names) > 1:
                raise DatasetError(f"The dataset has splits {', '.join(names)}: choose one (--from-split NAME).")
            split = split or names[0]
            loaded = loaded[split]
        elif split and split != "train":
            raise DatasetError(f"'{path.name}' holds one split; leave the split out.")
        rows = loaded.to_list()
    result = ParseResult()
    for number, row in enumerate(rows, start=1):
        line = validation.parse_line(json.dumps(_without_null_keys(row), ensure_ascii=False,
                                                default=str).encode("utf-8"), number, unit="row")
        result.lines.append(line)
        result.formats[line.source_format] = result.formats.get(line.source_format, 0) + 1
    return result, f"split '{split or 'train'}' of {name or path.name}: {len(rows)} rows"


def _without_null_keys(row: dict[str, Any]) -> dict[str, Any]:
    # Arrow gives every struct in a column every field seen in any row, null where a row had none
    # (a `weight` on one message puts `weight: null` on all): a null key in a message is absent.
    out = dict(row)
    for key in ("messages", "conversations"):
        if isinstance(out.get(key), list):
            out[key] = [{k: v for k, v in m.items() if v is not None} if isinstance(m, dict) else m
                        for m in out[key]]
    return out


def import_hf(db: sqlite_utils.Database, dataset: Dataset, path: Path, *, from_split: str = "",
              author: str = "", split: str = "train", count_tokens: TokenCounter | None = None,
              max_length: int = templating.DEFAULT_MAX_LENGTH, name: str = "") -> importing.ImportReport:
    """Import one split of a local Hugging Face dataset into this dataset's `split`; `name` is
    what the report and the examples' source call the file (default: its file name)."""
    permissions.require(author, "import_examples")
    parsed, note = read_hf(path, from_split, name)
    report = importing.import_parsed(db, dataset, parsed, source=name or path.name, author=author, split=split,
                                     count_tokens=count_tokens, max_length=max_length, unit="row")
    report.notes.append(note)
    return report


def import_hf_upload(db: sqlite_utils.Database, dataset: Dataset, data: bytes, name: str, *, author: str = "",
                     split: str = "train", count_tokens: TokenCounter | None = None,
                     max_length: int = templating.DEFAULT_MAX_LENGTH) -> importing.ImportReport:
    """An uploaded .parquet or .arrow file (the page): written to a private temporary folder and read
    by `import_hf` like a local file."""
    suffix = Path(name).suffix.lower()
    if suffix not in HF_SUFFIXES:
        raise DatasetError(f"'{name}' is not a Hugging Face dataset file ({', '.join(HF_SUFFIXES)}).")
    _check_size(len(data))
    with tempfile.TemporaryDirectory(prefix="studio-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        return import_hf(db, dataset, path, author=author, split=split, count_tokens=count_tokens,
                         max_length=max_length, name=name)
