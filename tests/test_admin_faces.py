"""The admin's view of imports: albums and photos with their status, re-encoding,
and the import history written by `manage.py import_albums`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from faces.models import Album, ImportRun, Photo
from faces.services import import_run_finish, import_run_start, photos_reencode
from tests.factories import AlbumFactory, PhotoFactory
from tests.fake_concrexit import FakeConcrexit
from tests.test_import_concrexit import tiny

pytestmark = pytest.mark.django_db


def photo_folder(root: Path) -> Path:
    """Two albums of small face-less images, one file that is not an image."""
    (root / "Party").mkdir(parents=True)
    (root / "Gala").mkdir()
    (root / "Party" / "red.png").write_bytes(tiny("red"))
    (root / "Party" / "green.png").write_bytes(tiny("green"))
    (root / "Gala" / "blue.png").write_bytes(tiny("blue"))
    (root / "Gala" / "broken.jpg").write_bytes(b"not a jpeg at all")
    return root


def run_folder_import(root: Path) -> str:
    out = io.StringIO()
    call_command(
        "import_albums", folder=str(root), workers=1, no_progress=True, stdout=out, stderr=io.StringIO()
    )
    return out.getvalue()


def test_import_albums_records_each_run_with_its_summary(tmp_path: Path, media_root: Path) -> None:
    root = photo_folder(tmp_path / "photos")
    run_folder_import(root)
    run = ImportRun.objects.get()
    assert run.source == "folder"
    assert run.location == str(root)
    assert run.finished is not None and run.started <= run.finished
    counts = [
        run.albums,
        run.photos_new,
        run.photos_changed,
        run.photos_unchanged,
        run.photos_removed,
        run.photos_encoded,
        run.photos_failed,
        run.faces,
        run.matches,
    ]
    assert counts == [2, 4, 0, 0, 0, 3, 1, 0, 0]
    assert run.errors.startswith("photo Gala/broken.jpg: ")
    assert run.errors.count("\n") == 0
    assert run.error == ""

    (root / "Gala" / "broken.jpg").unlink()
    run_folder_import(root)
    second = ImportRun.objects.order_by("-started").first()
    assert second is not None and second.pk != run.pk
    assert [second.albums, second.photos_unchanged, second.photos_removed, second.photos_encoded] == [
        2,
        3,
        1,
        0,
    ]
    assert second.errors == ""


def test_a_run_that_cannot_list_the_albums_is_recorded_with_its_error(
    fake_concrexit: FakeConcrexit, media_root: Path
) -> None:
    fake_concrexit.fail("/api/v2/photos/albums/", 403)
    with pytest.raises(CommandError, match=r"^Import failed: "):
        call_command("import_albums", workers=1, no_progress=True, stdout=io.StringIO())
    run = ImportRun.objects.get()
    assert run.source == "concrexit"
    assert run.location == fake_concrexit.base_url
    assert run.finished is not None
    assert run.error == (
        f"{fake_concrexit.base_url}/api/v2/photos/albums/?limit=50&offset=0: HTTP 403 (the website refused "
        "the token: is it a member's token with scope photos:read, and unexpired? "
        "Run `manage.py connect_thalia` to reconnect)"
    )
    assert [run.albums, run.photos_new, run.photos_encoded] == [0, 0, 0]


def test_a_run_from_a_folder_that_is_not_there_is_recorded_with_its_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"

    with pytest.raises(CommandError, match=f"^Import failed: {missing} is not a folder$"):
        run_folder_import(missing)

    run = ImportRun.objects.get()
    assert (run.source, run.location, run.error) == ("folder", str(missing), f"{missing} is not a folder")
    assert run.finished is not None
    assert [run.albums, run.photos_new, run.photos_encoded] == [0, 0, 0]


def test_a_run_against_a_website_that_is_down_is_recorded_with_its_error(
    fake_concrexit: FakeConcrexit, media_root: Path
) -> None:
    fake_concrexit.down = True

    with pytest.raises(CommandError, match=r"^Import failed: .*HTTP 503$"):
        call_command("import_albums", workers=1, no_progress=True, stdout=io.StringIO())

    run = ImportRun.objects.get()
    assert (run.source, run.location) == ("concrexit", fake_concrexit.base_url)
    assert run.error == f"{fake_concrexit.base_url}/api/v2/photos/albums/?limit=50&offset=0: HTTP 503"
    assert run.finished is not None


def test_import_run_services_write_the_summary_fields() -> None:
    run = import_run_start(source="folder", location="/srv/photos")
    assert run.finished is None
    from faces.imports.summary import ImportSummary

    summary = ImportSummary(albums=3, photos_new=5, photos_failed=2, faces=7, matches=1, errors=["a", "b"])
    import_run_finish(run=run, summary=summary)
    run.refresh_from_db()
    assert (run.albums, run.photos_new, run.photos_failed, run.faces, run.matches) == (3, 5, 2, 7, 1)
    assert run.errors == "a\nb"


def test_the_import_history_is_read_only_in_the_admin(admin_client: Client) -> None:
    run = import_run_finish(
        run=import_run_start(source="folder", location="/srv/photos"), summary=None, error="boom"
    )
    listing = admin_client.get("/admin/faces/importrun/").content.decode()
    assert '<td class="field-error">boom</td>' in listing
    assert (
        '<td class="field-summary">0 albums · 0 new · 0 changed · 0 removed · 0 already pending · '
        "0 encoded · 0 failed · 0 faces · 0 matches · 0 errors</td>"
    ) in listing
    assert '<td class="field-duration">0 s</td>' in listing
    unfinished = import_run_start(source="concrexit", location="https://thalia.example")
    listing = admin_client.get("/admin/faces/importrun/").content.decode()
    assert '<td class="field-duration">unfinished</td>' in listing
    assert admin_client.get("/admin/faces/importrun/add/").status_code == 403
    view = admin_client.get(f"/admin/faces/importrun/{run.pk}/change/")
    assert view.status_code == 200
    assert '<div class="readonly">/srv/photos</div>' in view.content.decode()
    assert admin_client.get(f"/admin/faces/importrun/{unfinished.pk}/change/").status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert (
        admin_client.post(f"/admin/faces/importrun/{run.pk}/change/", {"error": "edited"}).status_code == 403
    )
    assert admin_client.get(f"/admin/faces/importrun/{run.pk}/delete/").status_code == 403
    run.refresh_from_db()
    assert run.error == "boom"


def test_the_admin_lists_albums_and_photos_with_status_and_errors(admin_client: Client) -> None:
    album = AlbumFactory(title="Gala")
    PhotoFactory(album=album, status=Photo.Status.DONE)
    PhotoFactory(album=album, status=Photo.Status.PENDING)
    PhotoFactory(album=album, source_id="bad.jpg", status=Photo.Status.FAILED, error="not an image")
    albums = admin_client.get("/admin/faces/album/").content.decode()
    for column, value in (("done", 1), ("pending", 1), ("failed", 1)):
        assert f'<td class="field-{column}">{value}</td>' in albums
    photos = admin_client.get("/admin/faces/photo/?status=failed").content.decode()
    assert '<td class="field-error">not an image</td>' in photos
    assert '<td class="field-status">Failed</td>' in photos


def test_reencode_marks_photos_pending_and_the_next_import_encodes_them(
    admin_client: Client, tmp_path: Path, media_root: Path
) -> None:
    root = photo_folder(tmp_path / "photos")
    run_folder_import(root)
    party = Album.objects.get(title="Party")
    red = Photo.objects.get(source_id="Party/red.png")
    assert red.status == Photo.Status.DONE

    response = admin_client.post(
        "/admin/faces/photo/", {"action": "reencode", "_selected_action": [red.pk]}, follow=True
    )
    assert "1 photos will be encoded again by the next import." in response.content.decode()
    assert list(Photo.objects.filter(status=Photo.Status.PENDING).values_list("pk", flat=True)) == [red.pk]

    response = admin_client.post(
        "/admin/faces/album/", {"action": "reencode", "_selected_action": [party.pk]}, follow=True
    )
    assert "2 photos will be encoded again by the next import." in response.content.decode()
    line = run_folder_import(root)
    # The two Party photos are encoded again, the broken Gala file retried (and failing again);
    # every photo is counted on both sides (before: "2 encoded" of 1 changed and 0 else).
    assert (
        ", 1 changed or retried, 1 unchanged, 0 removed photos, 2 already pending; 2 encoded, 1 failed;"
        in line
    )
    assert Photo.objects.filter(status=Photo.Status.PENDING).count() == 0


def test_photos_reencode_clears_the_error() -> None:
    failed = PhotoFactory(status=Photo.Status.FAILED, error="timeout")
    done = PhotoFactory(status=Photo.Status.DONE)
    assert photos_reencode(photo_ids=[failed.pk, done.pk]) == 2
    assert list(Photo.objects.order_by("pk").values_list("status", "error")) == [
        ("pending", ""),
        ("pending", ""),
    ]
