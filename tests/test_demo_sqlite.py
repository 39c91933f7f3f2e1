"""The member's pages on the embedded SQLite database that `make run` uses.

Every other test runs on PostgreSQL; the grid and the API read photos with
PostgreSQL's SQL there (faces.selectors.photo_page) and through the ORM on
SQLite. This runs the demo's own settings in a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

SCRIPT = """
import datetime as dt, json, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from django.utils import timezone
from faces.models import Album, FaceEncoding, Match, Photo
from members.models import Member, ReferenceFace

def member(name):
    member = Member.objects.create(username=name, consent_given_at=timezone.now())
    reference = ReferenceFace(member=member, image="references/x.jpg", top=0, right=1, bottom=1, left=0)
    reference.set_encoding([0.0] * 128)
    reference.save()
    return member, reference

def photo(album, name, matched_to):
    photo = Photo.objects.create(
        album=album, source_id=name, file=f"photos/{name}", status=Photo.Status.DONE, content_hash=name * 8
    )
    face = FaceEncoding(photo=photo, top=0, right=1, bottom=1, left=0)
    face.set_encoding([0.0] * 128)
    face.save()
    for who, reference in matched_to:
        Match.objects.create(member=who, reference=reference, face=face, distance=0.1)

ada, ada_ref = member("ada")
bob, bob_ref = member("bob")
gala = Album.objects.create(source=Album.Source.FOLDER, source_id="gala", title="Gala", date=dt.date(2024, 5, 1))
trip = Album.objects.create(source=Album.Source.FOLDER, source_id="trip", title="Trip", date=dt.date(2022, 3, 9))
undated = Album.objects.create(source=Album.Source.FOLDER, source_id="misc", title="Misc")
photo(gala, "g1.jpg", [(ada, ada_ref)])
photo(trip, "t1.jpg", [(ada, ada_ref), (bob, bob_ref)])
photo(undated, "u1.jpg", [(ada, ada_ref)])
photo(gala, "g2.jpg", [(bob, bob_ref)])

client = Client(HTTP_HOST="127.0.0.1")
client.force_login(ada)
pages = {path: client.get(path) for path in ("/", "/years/", "/years/2024/", "/api/photos/")}
huge = "?page=99999999999999999999999"
hostile = {path: client.get(path) for path in ("/" + huge, "/api/photos/" + huge, "/years/0/")}
print(json.dumps({
    "status": {path: response.status_code for path, response in pages.items()},
    "hostile": {path: response.status_code for path, response in hostile.items()},
    "last_page": hostile["/api/photos/" + huge].json()["count"],
    "home": pages["/"].content.decode(),
    "years": pages["/years/"].content.decode(),
    "year": pages["/years/2024/"].content.decode(),
    "api": pages["/api/photos/"].json(),
}))
"""


def test_member_pages_work_on_the_demo_sqlite_database(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("THROWBACK_", "DJANGO_", "DATABASE_")) and key != "DEBUG"
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "throwback.settings",
        "DEBUG": "true",  # the demo: no collected static files needed
        "THROWBACK_DATA_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", SCRIPT],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])

    assert answer["status"] == {"/": 200, "/years/": 200, "/years/2024/": 200, "/api/photos/": 200}
    # A page number beyond any page gives the last page, an impossible year 404, on SQLite too.
    huge = "?page=99999999999999999999999"
    assert answer["hostile"] == {f"/{huge}": 200, f"/api/photos/{huge}": 200, "/years/0/": 404}
    assert answer["last_page"] == 3
    api = answer["api"]
    assert api["count"] == 3
    # Newest album first, undated last; dates come back as dates, not text.
    assert [(p["source_id"], p["album"]["title"], p["album"]["date"]) for p in api["results"]] == [
        ("g1.jpg", "Gala", "2024-05-01"),
        ("t1.jpg", "Trip", "2022-03-09"),
        ("u1.jpg", "Misc", None),
    ]
    assert "1 May 2024" in answer["home"] and "9 March 2022" in answer["home"]
    assert "g2.jpg" not in json.dumps(api)  # bob's photo only
    assert "/years/2024/" in answer["years"] and "/years/2022/" in answer["years"]
    assert "Gala" in answer["year"] and "Trip" not in answer["year"]
