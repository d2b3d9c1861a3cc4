"""``python -m rso.demo``: write a synthetic manifest (CSV) or households (JSON lines)."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from rso.demo.synthetic import CASELOADS, generate_households, write_manifest_csv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rso.demo", description=__doc__)
    parser.add_argument("what", choices=["manifest", "households"],
                        help="manifest: one CSV row per person; households: one JSON object per line")
    parser.add_argument("-n", "--persons", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--office", action="append", dest="offices", metavar="CODE",
                        help="office code (repeatable); default: every office but the RSO's")
    parser.add_argument("--caseload", action="append", dest="caseloads",
                        choices=[c.key for c in CASELOADS], help="caseload (repeatable)")
    parser.add_argument("--sea-only", action="store_true", help="every household arrived by boat")
    parser.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    args = parser.parse_args(argv)

    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8", newline="")  # noqa: SIM115
    try:
        options = {"caseloads": args.caseloads, "sea_only": args.sea_only}
        if args.what == "manifest":
            write_manifest_csv(out, args.persons, args.seed, args.offices, **options)
        else:
            for household in generate_households(args.persons, args.seed, args.offices, **options):
                out.write(json.dumps(household, ensure_ascii=False, default=_iso) + "\n")
    except ValueError as exc:
        parser.error(str(exc))
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _iso(value):
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


if __name__ == "__main__":
    raise SystemExit(main())
