"""Which licences forbid commercial use: one rule for the library's ``commercial_only`` filter (in Python for
SQLite, in SQL for PostgreSQL), model cards and the checks on weights Baton ships.

A licence name is non-commercial when it contains one of :data:`NONCOMMERCIAL_MARKERS`, case-insensitively:
``CC BY-NC 4.0``, ``CC BY-NC-SA 4.0``, ``AMASS terms (non-commercial research)``, ``noncommercial``.
"""

from __future__ import annotations

#: Substrings (compared case-insensitively) that mark a licence as non-commercial.
NONCOMMERCIAL_MARKERS: tuple[str, ...] = ("-NC", "NON-COMMERCIAL", "NONCOMMERCIAL")

#: The licence of weights trained on Bandai Namco Research's motion datasets (they carry the data's licence).
BANDAI_NAMCO_LICENSE = "CC BY-NC 4.0"


def is_noncommercial(license_name: str) -> bool:
    """True when ``license_name`` names a non-commercial licence (see :data:`NONCOMMERCIAL_MARKERS`)."""
    text = str(license_name).upper()
    return any(marker in text for marker in NONCOMMERCIAL_MARKERS)


def sql_commercial_clause(column: str) -> str:
    """A PostgreSQL boolean expression, true where ``column`` holds a licence :func:`is_noncommercial` accepts as
    commercial (the same markers, ``ILIKE``). ``column`` is an SQL identifier written by Baton, never user input.

    The ``%`` signs are doubled for psycopg's ``%(name)s`` parameter style.

    Raises:
        ValueError: when ``column`` is not a plain (optionally table-qualified) identifier.
    """
    if not column.replace(".", "").replace("_", "").isalnum():
        raise ValueError(f"not an SQL column name: {column!r}")
    return "(" + " AND ".join(f"{column} NOT ILIKE '%%{marker}%%'" for marker in NONCOMMERCIAL_MARKERS) + ")"
