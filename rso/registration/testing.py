"""Helpers for tests (no test framework imports): sample payloads, tiny images, and a scan
for plaintext personal data in raw database bytes (SQLite files or a pg_dump)."""
from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path


def member(**kw) -> dict:
    """A valid principal applicant; override any field."""
    base = {"relationship": "principal", "given_name": "Mohammed", "family_name": "Rahman",
            "date_of_birth": "1990-04-02", "sex": "M", "nationality": "MMR"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def case_payload(members: list[dict] | None = None, *, office: str | None = "IDN-JKT", **kw) -> dict:
    """A valid ``POST /api/v1/cases`` body (one principal unless ``members`` is given)."""
    body = {"office": office, "arrival": {"date": "2025-11-20", "mode": "sea", "location": "Lhokseumawe port"},
            "members": members or [member()]}
    body.update(kw)
    return body


def family_of_four(family_name: str = "Rahman", given: tuple[str, str, str, str] = ("Mohammed", "Fatima",
                                                                                   "Yusuf", "Aisha")) -> list[dict]:
    return [
        member(given_name=given[0], family_name=family_name, date_of_birth="1985-03-14", sex="M",
               documents=[{"type": "passport", "number": "MM4471230", "issuing_country": "MMR"}],
               phone="+62 812 5550 1234"),
        member(relationship="spouse", given_name=given[1], family_name=family_name, date_of_birth="1989-07-01",
               sex="F", specific_needs=["serious_medical_condition"]),
        member(relationship="child", given_name=given[2], family_name=family_name, date_of_birth="2014-02-10",
               sex="M"),
        member(relationship="child", given_name=given[3], family_name=family_name, date_of_birth="2019",
               dob_estimated=True, age_assessment={"method": "family_declaration"}, sex="F"),
    ]


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (24, 32), color=(180, 120, 60)) -> bytes:
    """A small real image (PNG, JPEG or WEBP)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def encodings_of(text: str) -> list[bytes]:
    """The byte strings a value could be stored as: UTF-8 and UTF-16 (both byte orders), in
    its own, lower and upper case."""
    out = []
    for variant in {text, text.lower(), text.upper()}:
        for enc in ("utf-8", "utf-16-le", "utf-16-be"):
            out.append(variant.encode(enc))
    return out


def plaintext_leaks(data: bytes, needles: Iterable[str]) -> list[str]:
    """The needles found in ``data`` in any of :func:`encodings_of` (an empty list is good)."""
    return [n for n in needles if any(b in data for b in encodings_of(n))]


def sqlite_bytes(database_url: str) -> bytes:
    """Every byte SQLite keeps for a database: the file, its write-ahead log and journal."""
    path = Path(database_url.split("sqlite:///", 1)[1])
    out = b""
    for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-journal")):
        if p.exists():
            out += p.read_bytes()
    return out
