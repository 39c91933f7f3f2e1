"""Helpers shared by the bench scripts: plain-text tables and a throwaway Django."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def table(headers: list[str], rows: list[list[object]]) -> None:
    cells = [headers, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out("  ".join(padded))
        if n == 0:
            out("  ".join("-" * w for w in widths))


def setup_django(work: Path, *, database: str = "db.sqlite3") -> None:
    """A throwaway SQLite database and media folder in `work`, then migrate."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "throwback.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{work / database}"
    os.environ["MEDIA_ROOT"] = str(work / "media")
    os.environ["THROWBACK_DATA_DIR"] = str(work / "data")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
