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


def setup_django_postgres(work: Path, *, database: str) -> None:
    """Django on a dedicated PostgreSQL benchmark database (created if missing), migrated.

    The server is the one in DATABASE_URL (default the local test server);
    only its database name is replaced, so the test and demo databases are
    never touched.
    """
    import dj_database_url
    import psycopg2

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/throwback")
    if not base.startswith("postgres"):
        base = "postgres://postgres@127.0.0.1:5432/throwback"
    parsed = dj_database_url.parse(base)
    admin = psycopg2.connect(
        dbname="postgres",
        user=parsed["USER"],
        password=parsed["PASSWORD"] or None,
        host=parsed["HOST"],
        port=parsed["PORT"] or 5432,
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{database}"')
    admin.close()
    os.environ["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + database
    os.environ["DATABASE_CONN_MAX_AGE"] = "0"
    os.environ["DJANGO_SETTINGS_MODULE"] = "throwback.settings"
    os.environ["MEDIA_ROOT"] = str(work / "media")
    os.environ["THROWBACK_DATA_DIR"] = str(work / "data")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def machine() -> dict[str, str]:
    """Cores, CPU model, OS, Python, load average: where a figure came from."""
    import platform

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load": load,
    }
