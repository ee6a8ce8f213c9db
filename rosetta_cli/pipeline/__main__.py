"""`python -m rosetta_cli.pipeline`: print the table of stages; `--reproduce`: print examples/reproduce.sh."""

from __future__ import annotations

import argparse
import sys

from rosetta_cli.pipeline import reproduce, table


def markdown(records: list[dict]) -> str:
    cols = list(records[0])
    rows = [cols, ["---"] * len(cols)] + [[str(r[c]) for c in cols] for r in records]
    return "\n".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rosetta_cli.pipeline", description=__doc__)
    p.add_argument("--reproduce", action="store_true", help="print examples/reproduce.sh, generated from the table")
    args = p.parse_args(argv)
    sys.stdout.write(reproduce.script() if args.reproduce else markdown(table.rows()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
