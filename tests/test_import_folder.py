"""import_albums --folder on real photos: what is stored, idempotence, resume."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from faces.imports.importer import run_import
from faces.models import Album, FaceEncoding, Match, Photo
from faces.sources.folder import FolderSource
from members.services import reference_add
from tests.conftest import import_process_command, import_process_env, make_album_folder
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo_root(tmp_path: Path, examples: Path, media_root: Path) -> Path:
    return make_album_folder(
        tmp_path / "photos",
        {
            "Party": [examples / n for n in ("obama2.jpg", "biden.jpg", "two_people.jpg")],
            "Gala": [examples / n for n in ("obama3.jpg", "kit_with_rose.jpg", "biden2.jpg")],
        },
    )


def import_folder(root: Path, **options: object) -> str:
    out = io.StringIO()
    call_command("import_albums", folder=str(root), workers=1, no_progress=True, stdout=out, **options)
    return out.getvalue()


def snapshot() -> dict[str, object]:
    """Everything an import writes, independent of primary keys."""
    return {
        "albums": sorted(Album.objects.values_list("source", "source_id", "title", "hidden")),
        "photos": sorted(
            Photo.objects.values_list("album__source_id", "source_id", "status", "content_hash", "file")
        ),
        "faces": sorted(
            FaceEncoding.objects.values_list("photo__source_id", "top", "right", "bottom", "left")
        ),
        "matches": sorted(Match.objects.values_list("member__username", "face__photo__source_id")),
    }


def test_folder_import_stores_albums_photos_and_faces(photo_root: Path) -> None:
    output = import_folder(photo_root)

    assert "Imported 2 albums: 6 new" in output
    assert "6 encoded, 0 failed" in output
    assert sorted(Album.objects.values_list("title", flat=True)) == ["Gala", "Party"]
    assert {p.source_id: p.faces.count() for p in Photo.objects.all()} == {
        "Party/obama2.jpg": 1,
        "Party/biden.jpg": 1,
        "Party/two_people.jpg": 2,
        "Gala/obama3.jpg": 1,
        "Gala/kit_with_rose.jpg": 2,
        "Gala/biden2.jpg": 1,
    }
    photo = Photo.objects.get(source_id="Party/two_people.jpg")
    assert (photo.width, photo.height, photo.status) == (1126, 661, Photo.Status.DONE)
    for photo in Photo.objects.all():
        original = (photo_root / photo.source_id).read_bytes()
        digest = hashlib.sha256(original).hexdigest()
        assert photo.content_hash == digest
        assert photo.file.name == f"photos/{digest[:2]}/{digest}.jpg"
        with default_storage.open(photo.file.name) as handle:
            assert handle.read() == original


def test_a_second_run_changes_nothing(photo_root: Path) -> None:
    import_folder(photo_root)
    before = snapshot()
    output = import_folder(photo_root)
    assert "0 new, 0 changed or retried, 6 unchanged, 0 removed photos; 0 encoded" in output
    assert snapshot() == before


def test_changed_and_removed_files_are_reencoded_and_deleted(
    photo_root: Path, examples: Path, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    import_folder(photo_root)
    removed_file = Photo.objects.get(source_id="Gala/biden2.jpg").file.name
    replaced_file = Photo.objects.get(source_id="Party/biden.jpg").file.name
    (photo_root / "Party" / "biden.jpg").write_bytes((examples / "obama.jpg").read_bytes())
    (photo_root / "Gala" / "biden2.jpg").unlink()

    with django_capture_on_commit_callbacks(execute=True):
        output = import_folder(photo_root)

    assert not default_storage.exists(removed_file)
    assert not default_storage.exists(replaced_file)

    assert "0 new, 1 changed or retried, 4 unchanged, 1 removed photos; 1 encoded, 0 failed" in output
    assert not Photo.objects.filter(source_id="Gala/biden2.jpg").exists()
    changed = Photo.objects.get(source_id="Party/biden.jpg")
    assert changed.faces.count() == 1
    assert changed.content_hash == hashlib.sha256((examples / "obama.jpg").read_bytes()).hexdigest()


def test_a_corrupt_file_is_recorded_and_the_rest_imports(photo_root: Path) -> None:
    (photo_root / "Party" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated nonsense")
    (photo_root / "Party" / "notes.txt").write_text("not an image extension: ignored")

    output = import_folder(photo_root)

    assert "6 encoded, 1 failed" in output
    broken = Photo.objects.get(source_id="Party/broken.jpg")
    assert broken.status == Photo.Status.FAILED
    assert broken.error.startswith("not a readable image")
    assert not Photo.objects.filter(source_id__endswith="notes.txt").exists()
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 6


def test_new_faces_are_matched_against_existing_references(photo_root: Path, examples: Path) -> None:
    member = MemberFactory(username="barack")
    reference_add(member=member, data=(examples / "obama.jpg").read_bytes())
    other = MemberFactory(username="joe")
    reference_add(member=other, data=(examples / "biden.jpg").read_bytes())

    import_folder(photo_root)

    matched = sorted(Photo.objects.matched_to(member).values_list("source_id", flat=True))
    assert matched == ["Gala/obama3.jpg", "Party/obama2.jpg", "Party/two_people.jpg"]
    matched_joe = sorted(Photo.objects.matched_to(other).values_list("source_id", flat=True))
    assert matched_joe == ["Gala/biden2.jpg", "Party/biden.jpg", "Party/two_people.jpg"]


def test_one_album_only(photo_root: Path) -> None:
    import_folder(photo_root, album="Gala")
    assert list(Album.objects.values_list("title", flat=True)) == ["Gala"]
    import_folder(photo_root)
    import_folder(photo_root, album="Party")  # must not mark the other albums missing
    assert sorted(Album.objects.values_list("title", "missing")) == [("Gala", False), ("Party", False)]
    with pytest.raises(CommandError, match="no album 'Nope'"):
        import_folder(photo_root, album="Nope")


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is not a folder"):
        import_folder(tmp_path / "absent")


@pytest.mark.slow
def test_two_workers_store_the_same_as_one(photo_root: Path) -> None:
    run_import(FolderSource(photo_root), workers=1)
    one = snapshot()
    Album.objects.all().delete()
    summary = run_import(FolderSource(photo_root), workers=2)
    assert summary.photos_encoded == 6
    assert snapshot() == one


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_killed_import_resumes_to_the_same_database(tmp_path: Path, examples: Path, media_root: Path) -> None:
    """kill -9 mid-import, run again: the database equals one clean import."""
    names = sorted(p.name for p in examples.iterdir() if p.suffix in (".jpg", ".jpeg", ".png"))
    root = make_album_folder(
        tmp_path / "photos",
        {"A": [examples / n for n in names[:12]], "B": [examples / n for n in names[12:]]},
    )
    env = import_process_env(media_root)
    command = import_process_command(root)
    member = MemberFactory(username="barack")
    reference_add(member=member, data=(examples / "obama.jpg").read_bytes())
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while Photo.objects.filter(status=Photo.Status.DONE).count() < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert Photo.objects.exclude(status=Photo.Status.DONE).exists(), "the import finished before the kill"

    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    resumed = snapshot()

    Album.objects.all().delete()
    run_import(FolderSource(root), workers=1)
    assert resumed == snapshot()
    assert FaceEncoding.objects.count() == len(resumed["faces"])
    assert len(resumed["matches"]) >= 10  # the Obama photos, matched across the kill


def test_unstorable_file_names_are_skipped_with_a_reason(photo_root: Path, examples: Path) -> None:
    data = (examples / "obama.jpg").read_bytes()
    latin1 = os.fsdecode(b"caf\xe9.jpg")  # not UTF-8: cannot be stored in the database
    (photo_root / "Party" / latin1).write_bytes(data)
    long_name = "x" * 250 + ".jpg"
    long_album = photo_root / ("A" * 255)
    long_album.mkdir()
    (long_album / long_name).write_bytes(data)

    out, err = io.StringIO(), io.StringIO()
    call_command("import_albums", folder=str(photo_root), workers=1, no_progress=True, stdout=out, stderr=err)

    assert "Imported 3 albums: 6 new" in out.getvalue()
    assert "6 encoded, 0 failed" in out.getvalue()
    assert "photo Party/caf?.jpg: skipped, file name is not valid UTF-8" in err.getvalue()
    assert (
        f"photo {'A' * 255}/{long_name}: skipped, file name is longer than 500 characters" in err.getvalue()
    )
    assert Photo.objects.filter(status=Photo.Status.DONE).count() == 6


def test_importing_another_folder_keeps_the_first_folders_albums_visible(
    photo_root: Path, tmp_path: Path, examples: Path
) -> None:
    member = MemberFactory(username="barack")
    reference_add(member=member, data=(examples / "obama.jpg").read_bytes())
    import_folder(photo_root)
    other = make_album_folder(tmp_path / "other", {"Picnic": [examples / "obama1.jpg"]})

    import_folder(other)

    assert sorted(Album.objects.values_list("title", "missing")) == [
        ("Gala", False),
        ("Party", False),
        ("Picnic", False),
    ]
    assert Photo.objects.matched_to(member).count() == 4
    # …while an album gone from its own folder is no longer shown
    shutil.rmtree(photo_root / "Gala")
    import_folder(photo_root)
    assert Album.objects.get(title="Gala").missing is True
    assert Photo.objects.matched_to(member).count() == 3


def test_a_stored_file_cut_short_by_an_interrupted_run_is_replaced(photo_root: Path) -> None:
    path = photo_root / "Party" / "obama2.jpg"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    name = f"photos/{digest[:2]}/{digest}.jpg"
    default_storage.save(name, io.BytesIO(path.read_bytes()[:1000]))

    import_folder(photo_root)

    with default_storage.open(name) as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == digest


def test_a_file_shared_by_two_photos_stays_while_one_is_left(photo_root: Path, examples: Path) -> None:
    shutil.copyfile(examples / "obama2.jpg", photo_root / "Gala" / "obama2-copy.jpg")
    import_folder(photo_root)
    shared = Photo.objects.get(source_id="Gala/obama2-copy.jpg").file.name
    assert Photo.objects.get(source_id="Party/obama2.jpg").file.name == shared

    (photo_root / "Gala" / "obama2-copy.jpg").unlink()
    import_folder(photo_root)

    assert default_storage.exists(shared)


def test_a_photo_that_cannot_be_stored_is_recorded_and_the_run_goes_on(
    photo_root: Path, settings, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("media storage cannot be created below a file")
    settings.MEDIA_ROOT = str(blocker / "media")

    output = import_folder(photo_root)

    assert "0 encoded, 6 failed" in output
    errors = set(Photo.objects.values_list("status", flat=True))
    assert errors == {Photo.Status.FAILED}
    assert all(e.startswith("could not be stored: ") for e in Photo.objects.values_list("error", flat=True))
    assert not FaceEncoding.objects.exists()


def test_zero_workers_is_refused(photo_root: Path) -> None:
    with pytest.raises(CommandError, match="--workers must be at least 1"):
        call_command("import_albums", folder=str(photo_root), workers=0, no_progress=True)


def jpeg_with_exif(
    path: Path, source: Path, *, original: str | bytes | None, raw_app1: bytes | None = None
) -> Path:
    """A copy of source's pixels with a chosen DateTimeOriginal, or a raw (broken) EXIF segment."""
    from PIL import Image

    with Image.open(source) as image:
        pixels = image.convert("RGB")
    if raw_app1 is not None:
        buffer = io.BytesIO()
        pixels.save(buffer, format="JPEG")
        data = buffer.getvalue()
        segment = b"Exif\x00\x00" + raw_app1
        app1 = b"\xff\xe1" + (len(segment) + 2).to_bytes(2, "big") + segment
        path.write_bytes(data[:2] + app1 + data[2:])  # right after SOI
        return path
    exif = Image.Exif()
    if original is not None:
        exif.get_ifd(0x8769)[36867] = original
    pixels.save(path, format="JPEG", exif=exif)
    return path


def test_album_dates_come_from_the_folder_name_else_the_most_common_exif_day(
    tmp_path: Path, examples: Path, media_root: Path
) -> None:
    root = tmp_path / "photos"
    # biden.jpg and obama3.jpg were taken on 10 May 2010, obama2.jpg on 9 September 2009
    # (its EXIF date carries a stray suffix: "2009:09:09 20:27:09.60:04:00").
    make_album_folder(
        root,
        {
            "Party": [examples / n for n in ("biden.jpg", "obama3.jpg", "obama2.jpg")],
            "2019-08-20 Trip": [examples / "obama3.jpg"],  # the name wins over the EXIF day
            "20180102_Gala": [examples / "biden.jpg"],
            "2019-02-30 Not a date": [examples / "obama3.jpg"],
            "Undated": [examples / "kit_with_rose.jpg"],  # no EXIF date
        },
    )
    tie = root / "Tie"
    tie.mkdir()
    jpeg_with_exif(tie / "a.jpg", examples / "biden.jpg", original="2017:06:02 10:00:00")
    jpeg_with_exif(tie / "b.jpg", examples / "biden.jpg", original="2017:06:01 10:00:00")

    import_folder(root)

    assert sorted((a.source_id, a.title, str(a.date)) for a in Album.objects.all()) == [
        ("20180102_Gala", "Gala", "2018-01-02"),
        ("2019-02-30 Not a date", "2019-02-30 Not a date", "2010-05-10"),
        ("2019-08-20 Trip", "Trip", "2019-08-20"),
        ("Party", "Party", "2010-05-10"),
        ("Tie", "Tie", "2017-06-01"),  # equally common: the earliest day
        ("Undated", "Undated", "None"),
    ]


def test_bad_exif_never_fails_the_import_and_gives_no_date(
    tmp_path: Path, examples: Path, media_root: Path
) -> None:
    from faces.sources.folder import exif_date

    album = tmp_path / "photos" / "Odd"
    album.mkdir(parents=True)
    bad = {
        "zeros.jpg": "0000:00:00 00:00:00",
        "month13.jpg": "2019:13:45 10:00:00",
        "words.jpg": "yesterday",
        "bytes.jpg": b"\xff\xfe\x00garbage",
        "1970.jpg": "1970:01:01 00:00:00",
    }
    for name, value in bad.items():
        jpeg_with_exif(album / name, examples / "biden.jpg", original=value)
    jpeg_with_exif(
        album / "broken-ifd.jpg", examples / "biden.jpg", original=None, raw_app1=b"MM\x00*\x00\x00\xff\xff"
    )
    jpeg_with_exif(
        album / "cut.jpg", examples / "biden.jpg", original=None, raw_app1=b"II*\x00\x08\x00\x00\x00\x05\x00"
    )

    assert {path.name: exif_date(path) for path in sorted(album.iterdir())} == {
        name: None for name in sorted([*bad, "broken-ifd.jpg", "cut.jpg"])
    }
    output = import_folder(tmp_path / "photos")

    assert "Imported 1 albums: 7 new" in output
    assert "7 encoded, 0 failed" in output
    assert Album.objects.get().date is None


def test_images_in_folders_below_an_album_are_read_and_an_empty_album_says_why(
    tmp_path: Path, examples: Path, media_root: Path
) -> None:
    root = tmp_path / "photos"
    make_album_folder(
        root,
        {
            "Party": [examples / "obama2.jpg"],
            "Party/day 2": [examples / "biden.jpg"],
            "Party/day 2/evening": [examples / "obama3.jpg"],
            "Party/.thumbnails": [examples / "obama.jpg"],  # hidden: not read
            "Notes": [],
        },
    )
    (root / "Notes" / "readme.txt").write_text("no photos here")
    (root / "Empty").mkdir()

    output = io.StringIO()
    errors = io.StringIO()
    call_command("import_albums", folder=str(root), workers=1, no_progress=True, stdout=output, stderr=errors)

    assert sorted(Photo.objects.values_list("source_id", flat=True)) == [
        "Party/day 2/biden.jpg",
        "Party/day 2/evening/obama3.jpg",
        "Party/obama2.jpg",
    ]
    assert "Imported 3 albums: 3 new" in output.getvalue()
    assert errors.getvalue().splitlines() == [
        "  album Empty: empty: no files in it or its sub-folders (images: .bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp)",
        "  album Notes: empty: none of its 1 files (in it or its sub-folders) is an image "
        "(.bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp)",
    ]
