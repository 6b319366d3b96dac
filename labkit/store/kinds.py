"""What each kind of entity checks in its main file, and what metadata it extracts, before storing."""
from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..cellml import CellMLError, CellMLModel, parse_cellml
from ..errors import InvalidInput
from ..protocols import Interface, check_protocol

KINDS = ("model", "protocol", "dataset")
MAIN_SUFFIX = {"model": ".cellml", "protocol": ".ipynb", "dataset": ".csv"}
_COLUMN = re.compile(r"^\s*(?P<name>[^()\[\]]+?)\s*[\(\[](?P<units>[^()\[\]]+)[\)\]]\s*$")
MAX_DATASET_BYTES = 50 * 1024 * 1024


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"unknown entity kind {kind!r}; use one of {', '.join(KINDS)}")
    return kind


def check_model(data: bytes) -> CellMLModel:
    try:
        return parse_cellml(data)
    except CellMLError as err:
        raise InvalidInput(f"not a usable CellML model: {err}") from None


def check_protocol_file(data: bytes) -> Interface:
    return check_protocol(data)


@dataclass(frozen=True)
class DatasetColumns:
    columns: list[dict[str, str]]
    n_rows: int


def check_dataset(data: bytes) -> DatasetColumns:
    """A CSV whose header names every column with its units, e.g. ``time (ms),voltage (mV)``."""
    if len(data) > MAX_DATASET_BYTES:
        raise InvalidInput(f"the data set is larger than {MAX_DATASET_BYTES // 2**20} MiB")
    try:
        with warnings.catch_warnings():
            # index_col=False: never take surplus leading fields as an index (that shifts every
            # value into the wrong column); rows longer than the header are an error instead.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(io.BytesIO(data), comment="#", index_col=False)
    except (pd.errors.ParserError, pd.errors.ParserWarning, pd.errors.EmptyDataError,
            UnicodeDecodeError) as err:
        raise InvalidInput(f"the data set is not a readable CSV file: {err}") from None
    columns: list[dict[str, str]] = []
    problems = []
    for header in frame.columns:
        match = _COLUMN.match(str(header))
        if not match:
            problems.append(f"column {header!r} must give its units, as 'name (units)'")
            continue
        columns.append({"name": match["name"], "units": match["units"].strip()})
    if problems:
        raise InvalidInput("the data set was refused: " + "; ".join(problems))
    if frame.empty:
        raise InvalidInput("the data set has a header but no rows")
    non_numeric = [str(c) for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise InvalidInput(f"columns {non_numeric} hold values that are not numbers")
    not_finite = [str(c) for c in frame.columns if not np.isfinite(frame[c].to_numpy(dtype=float)).all()]
    if not_finite:
        raise InvalidInput(f"columns {not_finite} hold empty, NaN or infinite values; a data set holds "
                           "measured numbers only (leave out rows that were not measured)")
    return DatasetColumns(columns, len(frame))


def describe(kind: str, data: bytes) -> Any:
    """Check a main file of ``kind``; return its extracted metadata or raise InvalidInput."""
    return {"model": check_model, "protocol": check_protocol_file, "dataset": check_dataset}[kind](data)
