"""Synthetic demo caseload (no real person's data): see :mod:`rso.demo.synthetic`."""
from rso.demo.synthetic import (
    CASELOADS,
    MANIFEST_COLUMNS,
    generate_households,
    generate_manifest_rows,
    write_manifest_csv,
)

__all__ = [
    "CASELOADS",
    "MANIFEST_COLUMNS",
    "generate_households",
    "generate_manifest_rows",
    "write_manifest_csv",
]
