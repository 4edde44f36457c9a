"""Tables from files as they really are: CSV of any common separator, decimal commas, gzip,
Parquet; a file that is something else, or damaged, is one error saying what to do."""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow

from deepfin.errors import DataError, FormatError, InputFileError

log = logging.getLogger(__name__)

# the first bytes of files that are not CSV, whatever their name says
FOREIGN_FORMATS = {
    b"PK\x03\x04": "an Excel workbook (.xlsx) or a zip archive",
    b"\xd0\xcf\x11\xe0": "an Excel 97-2003 workbook (.xls)",
    b"%PDF": "a PDF document",
    b"\xff\xfe": "UTF-16 text",
    b"\xfe\xff": "UTF-16 text",
}
SEPARATORS = (",", ";", "\t", "|")


def frame_from(
    source: Any, *, what: str, read: Callable[[Path], pl.DataFrame], files: str
) -> pl.DataFrame:
    """A non-empty frame of `what` from a path (`read` opens it), a polars or a pandas frame;
    `files` names the file formats in the error for anything else."""
    if isinstance(source, pl.DataFrame):
        frame = source
    elif isinstance(source, str | Path):
        frame = read(Path(source))
    elif type(source).__module__.startswith("pandas"):
        frame = pl.from_pandas(source)
    else:
        raise DataError(
            f"cannot read {what} from a {type(source).__name__}; pass a {files} path, a polars "
            "DataFrame or a pandas DataFrame"
        )
    if frame.height == 0:
        raise DataError(f"the {what} table is empty (no rows); check the file or the filter")
    return frame


def read_table(path: Path, what: str) -> pl.DataFrame:
    """A CSV (any common separator, decimal commas, gzip) or Parquet file of `what`.

    What the file really is decides, not only its name: a workbook or a UTF-16 export named
    .csv, a truncated gzip or Parquet file are each one error that says what to do.
    """
    if path.is_dir():
        raise InputFileError(f"{path} is a folder; pass the path of a CSV or Parquet file")
    if not path.exists():
        raise InputFileError(f"no file at {path}; pass the path of a CSV or Parquet file of {what}")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty; it needs a header and at least one row of {what}")
    with path.open("rb") as file:
        magic = file.read(4)
    suffixes = "".join(path.suffixes).lower()
    try:
        if suffixes.endswith((".parquet", ".pq")) or magic == b"PAR1":
            return pl.read_parquet(path, glob=False)
        for start, kind in FOREIGN_FORMATS.items():
            if magic.startswith(start):
                raise FormatError(
                    f"{path} is {kind}, not a CSV file; save it as CSV (UTF-8) or Parquet and "
                    "pass that"
                )
        separator, decimal_comma = sniff_csv(path)
        # glob=False: a path is read as written, brackets and all
        frame = pl.read_csv(
            path,
            separator=separator,
            decimal_comma=decimal_comma,
            infer_schema_length=10_000,
            glob=False,
        )
    except pl.exceptions.NoDataError as error:
        raise DataError(f"{path} has no data: {error}") from error
    except (pl.exceptions.PolarsError, pyarrow.ArrowException) as error:
        raise FormatError(
            f"could not read {path} as CSV or Parquet ({error}); check that the file is what "
            "its name says, complete, and that every row has the header's columns"
        ) from error
    except (OSError, EOFError, zlib.error) as error:  # a truncated or corrupt gzip file
        raise FormatError(
            f"could not decompress {path} ({error}): the file is truncated or corrupt; "
            "copy or compress it again"
        ) from error
    if frame.width == 1 and len(frame.columns[0].split()) >= 3:
        raise FormatError(
            f"{path} reads as a single column with spaces in its header: its values look "
            "separated by spaces, or it has no header row; deepfin reads files "
            "separated by , ; tab or | with a header row naming the columns: convert it first"
        )
    return frame


def sniff_csv(path: Path) -> tuple[str, bool]:
    """The separator of a CSV file and whether its numbers use decimal commas (as in 1,25).

    The separator is the most frequent of , ; tab | in the header; decimal commas are only
    assumed when the separator is not a comma and the first rows hold digit,digit.
    """
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as file:
        lines = [line for _, line in zip(range(50), file, strict=False)]
    header = lines[0] if lines else ""
    separator = max(SEPARATORS, key=header.count)
    if header.count(separator) == 0:
        separator = ","
    decimal_comma = separator != "," and any(re.search(r"\d,\d", line) for line in lines[1:])
    if separator != "," or decimal_comma:
        log.info(
            "reading %s with separator %r%s",
            path,
            separator,
            " and decimal commas" if decimal_comma else "",
        )
    return separator, decimal_comma
