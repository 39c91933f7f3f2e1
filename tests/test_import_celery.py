"""The distributed import: import_albums with CELERY_BROKER_URL, a real Celery worker, the real Redis.

A worker process (`celery -A throwback worker --pool=solo`) is started once for
this module, pointed at the test database, a media folder, a fake website and
a queue of its own on the Redis at 127.0.0.1:6379 (database 14, or
THROWBACK_TEST_REDIS_URL), so parallel test runs do not share tasks. The tests
are transactional: the worker sees only committed rows.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from faces import engine, services
from faces.imports import distributed, tasks
from faces.imports.summary import ImportSummary
from faces.models import Album, FaceEncoding, Match, Photo
from faces.sources import SourceAlbum
from members.services import reference_add
from tests.conftest import REPO, make_album_folder, use_website
from tests.factories import MemberFactory
from tests.fake_concrexit import FakeConcrexit
from thalia.services import website_source

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

REDIS_URL = os.environ.get("THROWBACK_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = f"throwback-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def site() -> Iterator[FakeConcrexit]:
    """The website, shared by the worker and the tests (each test adds its own albums)."""
    with FakeConcrexit() as fake:
        yield fake


@pytest.fixture(scope="module")
def shared_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def worker(
    django_db_setup: None, site: FakeConcrexit, shared_media: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """One Celery worker on this module's queue, using the test database."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "throwback.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(shared_media),
        "SECRET_KEY": "test",
        "CELERY_BROKER_URL": REDIS_URL,
        "THROWBACK_CELERY_QUEUE": QUEUE,
        "THALIA_API_URL": site.base_url,
        "THALIA_ACCESS_TOKEN": site.token,
        "THALIA_RETRIES": "0",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "throwback",
        "worker",
        "--pool=solo",
        "--loglevel=WARNING",
    ]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", f"--hostname={QUEUE}@%h"]
    process = subprocess.Popen(command, cwd=REPO, env=env)
    yield process
    process.terminate()  # warm shutdown: finishes the task at hand
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(QUEUE, f"{QUEUE}-idle", f"_kombu.binding.{QUEUE}")


@pytest.fixture
def celery(
    worker: subprocess.Popen[bytes], site: FakeConcrexit, shared_media: Path, settings
) -> FakeConcrexit:  # type: ignore[no-untyped-def]
    """Throwback in this process pointed at the same broker, queue, media and website."""
    assert worker.poll() is None, "the Celery worker has stopped"
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_TASK_DEFAULT_QUEUE = QUEUE
    settings.MEDIA_ROOT = str(shared_media)
    use_website(settings, site)
    return site


def import_command(**options: object) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_albums", no_progress=True, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def snapshot() -> dict[str, object]:
    return {
        "photos": sorted(
            Photo.objects.values_list(
                "id", "source_id", "status", "error", "content_hash", "file", "encoded_at", "claimed_by"
            )
        ),
        "faces": sorted(FaceEncoding.objects.values_list("id", "photo_id", "top", "right", "bottom", "left")),
        "matches": sorted(Match.objects.values_list("id", "member_id", "face_id", "distance")),
    }


def test_celery_workers_import_a_folder(celery: FakeConcrexit, tmp_path: Path, examples: Path) -> None:
    barack = MemberFactory(username="barack")
    reference_add(member=barack, data=(examples / "obama.jpg").read_bytes())
    root = make_album_folder(
        tmp_path / "photos",
        {
            "Party": [examples / n for n in ("obama2.jpg", "biden.jpg", "two_people.jpg")],
            "Gala": [examples / n for n in ("obama3.jpg", "kit_with_rose.jpg", "biden2.jpg")],
        },
    )
    broken = b"\xff\xd8\xff\xe0 truncated nonsense"
    (root / "Gala" / "broken.jpg").write_bytes(broken)
    with pytest.raises(engine.NotAnImage) as refused:
        engine.analyse(broken)

    out, err = import_command(folder=str(root), timeout=300)

    assert out.startswith("Imported 2 albums: 7 new, 0 changed or retried, 0 unchanged, 0 removed photos; ")
    assert "; 6 encoded, 1 failed; 8 faces, 3 matches in " in out
    assert err == f"  photo Gala/broken.jpg: {refused.value}\n"
    assert {p.source_id: (p.status, p.faces.count()) for p in Photo.objects.all()} == {
        "Party/obama2.jpg": ("done", 1),
        "Party/biden.jpg": ("done", 1),
        "Party/two_people.jpg": ("done", 2),
        "Gala/obama3.jpg": ("done", 1),
        "Gala/kit_with_rose.jpg": ("done", 2),
        "Gala/biden2.jpg": ("done", 1),
        "Gala/broken.jpg": ("failed", 0),
    }
    assert sorted(Photo.objects.matched_to(barack).values_list("source_id", flat=True)) == [
        "Gala/obama3.jpg",
        "Party/obama2.jpg",
        "Party/two_people.jpg",
    ]
    assert set(Photo.objects.values_list("claimed_by", flat=True)) == {""}
    stored = Photo.objects.get(source_id="Party/biden.jpg")
    with default_storage.open(stored.file.name) as handle:  # copied by the worker
        assert handle.read() == (root / "Party" / "biden.jpg").read_bytes()

    # A second run queues nothing and changes nothing.
    before = snapshot()
    out, _ = import_command(folder=str(root), timeout=300)
    assert "0 new, 1 changed or retried, 6 unchanged, 0 removed photos; 0 encoded, 1 failed;" in out
    assert snapshot() == before


def test_a_task_run_twice_stores_nothing_twice(celery: FakeConcrexit, tmp_path: Path, examples: Path) -> None:
    root = make_album_folder(
        tmp_path / "photos", {"Twice": [examples / n for n in ("obama2.jpg", "two_people.jpg")]}
    )
    import_command(folder=str(root), timeout=300)
    before = snapshot()
    ids = list(Photo.objects.order_by("id").values_list("id", flat=True))
    assert [row[2] for row in before["photos"]] == ["done", "done"]  # type: ignore[index]

    # Run here, and queued again (twice): every run finds the photos not pending.
    assert [distributed.import_photo(photo_id) for photo_id in ids] == ["skipped", "skipped"]
    tasks.enqueue(ids + ids)
    # The worker takes tasks in order: once a photo queued after them is done, they have run.
    album = Album.objects.get(source_id="Twice")
    marker = Photo.objects.create(album=album, source_id="Twice/marker.jpg", origin="Twice/obama3.jpg")
    (root / "Twice" / "obama3.jpg").write_bytes((examples / "obama3.jpg").read_bytes())
    summary = ImportSummary()
    tasks.enqueue([marker.pk])
    distributed.wait([marker.pk], wait_s=300, summary=summary, progress=None)

    assert (summary.photos_encoded, summary.faces) == (1, 1)
    after = snapshot()
    assert [row for row in after["photos"] if row[0] != marker.pk] == before["photos"]  # type: ignore[union-attr]
    assert [row for row in after["faces"] if row[1] != marker.pk] == before["faces"]  # type: ignore[union-attr]
    assert after["matches"] == before["matches"]


def test_a_website_photo_whose_urls_went_stale_in_the_queue_is_refreshed_by_the_task(
    celery: FakeConcrexit, examples: Path
) -> None:
    site = celery
    pks = site.add_album("queued-long", "Queued long", [examples / "obama2.jpg", examples / "two_people.jpg"])
    source = website_source()
    remote = SourceAlbum("queued-long", "Queued long")
    services.album_sync(
        source="concrexit", location=source.base_url, remote=remote, listing=source.photos(remote)
    )
    # Hours pass while the tasks wait: the site's signatures expire, and Throwback knows it.
    site.clock_offset_s += 4 * 3600
    Photo.objects.update(urls_fetched_at=timezone.now() - dt.timedelta(hours=4))
    start = len(site.requests)
    ids = list(Photo.objects.order_by("id").values_list("id", flat=True))

    summary = ImportSummary()
    tasks.enqueue(ids)
    distributed.wait(ids, wait_s=300, summary=summary, progress=None)

    assert (summary.photos_encoded, summary.photos_failed, summary.faces) == (2, 0, 3)
    requested = [path.split("?")[0] for _, path in site.requests[start:]]
    # The first task refreshes the album's URLs (all its photos at once), then both download.
    assert requested == [
        "/api/v2/photos/albums/queued-long/",
        f"/media/private/photos/queued-long/{pks[0]}_0_large.webp",
        f"/media/private/photos/queued-long/{pks[1]}_0_large.webp",
    ]
    assert [p.faces.count() for p in Photo.objects.order_by("id")] == [1, 2]


def test_no_wait_queues_and_returns(celery: FakeConcrexit, tmp_path: Path, examples: Path) -> None:
    root = make_album_folder(
        tmp_path / "photos", {"Later": [examples / "biden.jpg", examples / "obama2.jpg"]}
    )

    out, _ = import_command(folder=str(root), no_wait=True)

    assert "; 0 encoded, 0 failed, 2 still queued; 0 faces, 0 matches in " in out
    summary = ImportSummary()
    ids = list(Photo.objects.values_list("id", flat=True))
    distributed.wait(ids, wait_s=300, summary=summary, progress=None)
    assert (summary.photos_encoded, summary.faces, summary.photos_queued) == (2, 2, 0)


def test_without_a_worker_the_command_stops_waiting_and_the_photos_stay_pending(
    celery: FakeConcrexit, settings, tmp_path: Path, examples: Path
) -> None:  # type: ignore[no-untyped-def]
    settings.CELERY_TASK_DEFAULT_QUEUE = f"{QUEUE}-idle"  # no worker listens there
    root = make_album_folder(tmp_path / "photos", {"Nobody": [examples / "biden.jpg"]})

    out, err = import_command(folder=str(root), timeout=1)

    assert "; 0 encoded, 0 failed, 1 still queued; " in out
    assert err == (
        "  1 photos still wait for a Celery worker (none finished for 1 s); "
        "workers encode them when they take them\n"
    )
    assert list(Photo.objects.values_list("status", flat=True)) == ["pending"]


def test_without_a_broker_celery_is_never_imported(tmp_path: Path, examples: Path, media_root: Path) -> None:
    root = make_album_folder(tmp_path / "photos", {"Plain": [examples / "biden.jpg"]})
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env |= {
        "DJANGO_SETTINGS_MODULE": "throwback.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(media_root),
        "SECRET_KEY": "test",
    }
    script = (
        "import sys, django; django.setup()\n"
        "from django.core.management import call_command\n"
        f"call_command('import_albums', folder={str(root)!r}, workers=1, no_progress=True)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu') or m == 'throwback.celery'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )

    assert "1 encoded, 0 failed" in result.stdout
    assert result.stdout.rstrip().endswith("\n[]")
    assert Photo.objects.get().status == "done"
