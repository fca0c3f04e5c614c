"""One proxy of a team, as a process of its own: its share of the synthetic pairs into
the team's PostgreSQL store and, the same pairs, into a SQLite store of its own (what it
would report alone). ``python -m tests.harness.report.team_writer URL FILE NAME FIRST N``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.harness.report.synthetic import build_store


def main(argv: list[str]) -> None:
    url, alone, instance, first, count = argv
    build_store(
        alone and Path(alone), int(count), "nogo", first=int(first), instance=instance, load=False
    )
    build_store(url, int(count), "nogo", first=int(first), instance=instance, load=False)


if __name__ == "__main__":
    main(sys.argv[1:])
