"""Hostile files in an imported folder.

Each case adds one file next to a photo that is already imported and matched,
and imports again: the file is recorded (encoded, or failed with its reason),
or not listed at all; the run completes and the stored photo, its faces and
its match are untouched.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from faces.models import FaceEncoding, Match, Photo
from members.models import Member
from members.services import reference_add
from tests import hostile
from tests.conftest import make_album_folder
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

UNREADABLE = "not a readable image (UnidentifiedImageError)"
TRUNCATED = "not a readable image (OSError)"
BOMB = "image has more than the limit of 50,000,000 pixels"


@pytest.fixture
def face(examples: Path) -> bytes:
    return (examples / "obama-480p.jpg").read_bytes()


@pytest.fixture
def party(tmp_path: Path, examples: Path, media_root: Path) -> Path:
    """A folder with album Party (obama2.jpg), imported, and a member matched in it."""
    root = make_album_folder(tmp_path / "photos", {"Party": [examples / "obama2.jpg"]})
    member = MemberFactory(username="barack")
    reference_add(member=member, data=(examples / "obama.jpg").read_bytes())
    run(root)
    assert Match.objects.filter(member=member, face__photo__source_id="Party/obama2.jpg").count() == 1
    return root


def run(root: Path) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_albums", folder=str(root), workers=1, no_progress=True, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def stored() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], bool]:
    """The first photo's row, faces and match, and whether its file is stored."""
    photo = Photo.objects.get(source_id="Party/obama2.jpg")
    faces = list(FaceEncoding.objects.filter(photo=photo).values_list("id", "top", "right", "bottom", "left"))
    matches = list(Match.objects.filter(face__photo=photo).values_list("id", "member_id", "distance"))
    return (
        [(photo.pk, photo.status, photo.content_hash, photo.file.name), *faces],
        matches,
        default_storage.exists(photo.file.name),
    )


# name, file name, maker, expected (status, error, faces)
RECORDED: list[tuple[str, str, Callable[[bytes], bytes], tuple[str, str, int]]] = [
    ("text with an image name", "notes.jpg", hostile.text, ("failed", UNREADABLE, 0)),
    ("zero bytes", "empty.jpg", hostile.zero_bytes, ("failed", UNREADABLE, 0)),
    ("JPEG header only", "header.jpg", hostile.jpeg_header_only, ("failed", UNREADABLE, 0)),
    ("truncated JPEG", "cut.jpg", hostile.truncated_jpeg, ("failed", TRUNCATED, 0)),
    ("truncated PNG", "cut.png", hostile.truncated_png, ("failed", TRUNCATED, 0)),
    ("PNG decompression bomb", "bomb.png", hostile.png_bomb, ("failed", BOMB, 0)),
    ("GIF decompression bomb", "bomb.gif", hostile.gif_bomb, ("failed", BOMB, 0)),
    ("JPEG decompression bomb", "bomb.jpg", hostile.jpeg_bomb, ("failed", BOMB, 0)),
    ("HEIC named .jpg", "phone.jpg", hostile.heic, ("failed", UNREADABLE, 0)),
    ("SVG with a script named .png", "logo.png", hostile.svg_with_script, ("failed", UNREADABLE, 0)),
    ("HTML page named .jpg", "page.jpg", hostile.html_page, ("failed", UNREADABLE, 0)),
    ("CMYK JPEG", "cmyk.jpg", hostile.cmyk_jpeg, ("done", "", 1)),
    ("16-bit greyscale PNG", "deep.png", hostile.grey_16bit_png, ("done", "", 1)),
    ("palette PNG", "palette.png", hostile.palette_png, ("done", "", 1)),
    ("RGBA PNG", "alpha.png", hostile.alpha_png, ("done", "", 1)),
    ("animated GIF", "anim.gif", hostile.animated_gif, ("done", "", 1)),
    ("WebP", "photo.webp", hostile.webp, ("done", "", 1)),
    ("TIFF", "scan.tif", hostile.tiff, ("done", "", 1)),
    ("10x10 image", "tiny.png", hostile.tiny_10x10, ("done", "", 0)),
    ("EXIF orientation 3", "upside-down.jpg", lambda f: hostile.with_orientation(f, 3), ("done", "", 1)),
    ("EXIF orientation 6", "sideways.jpg", lambda f: hostile.with_orientation(f, 6), ("done", "", 1)),
    ("EXIF orientation 8", "other-way.jpg", lambda f: hostile.with_orientation(f, 8), ("done", "", 1)),
    ("unicode name", "Ĳsselmeer – feest 😀.jpg", lambda f: f, ("done", "", 1)),
    ("name with a newline", "two\nlines.jpg", lambda f: f, ("done", "", 1)),
    ("name that looks like traversal", "..%2F..%2Fetc%2Fpasswd.jpg", lambda f: f, ("done", "", 1)),
    ("upper-case extension", "SHOUT.JPG", lambda f: f, ("done", "", 1)),
]


@pytest.mark.parametrize(("case", "name", "maker", "expected"), RECORDED, ids=[c[0] for c in RECORDED])
def test_a_hostile_file_is_recorded_and_the_stored_photo_kept(
    party: Path, face: bytes, case: str, name: str, maker, expected: tuple[str, str, int]
) -> None:  # type: ignore[no-untyped-def]
    before = stored()
    (party / "Party" / name).write_bytes(maker(face))

    out, err = run(party)

    status, error, faces = expected
    assert "Imported 1 albums: 1 new, 0 changed or retried, 1 unchanged, 0 removed photos" in out
    assert f"{int(status == 'done')} encoded, {int(status == 'failed')} failed" in out
    photo = Photo.objects.get(source_id=f"Party/{name}")
    assert (photo.status, photo.error, photo.faces.count()) == (status, error, faces)
    assert err == (f"  photo Party/{name}: {error}\n" if error else "")
    if status == "done":
        assert (photo.width, photo.height) == ((10, 10) if faces == 0 else (853, 480))
        assert photo.file.name.startswith("photos/") and ".." not in photo.file.name
    assert stored() == before


@pytest.mark.parametrize(
    ("case", "name"),
    [
        ("HEIC file", "phone.heic"),
        ("SVG file", "logo.svg"),
        ("PDF", "menu.pdf"),
        ("hidden extension", "photo.jpg.exe"),
    ],
)
def test_files_without_an_image_extension_are_not_listed(
    party: Path, face: bytes, case: str, name: str
) -> None:
    before = stored()
    (party / "Party" / name).write_bytes(hostile.heic(face))
    out, err = run(party)
    assert "0 new, 0 changed or retried, 1 unchanged, 0 removed photos; 0 encoded, 0 failed" in out
    assert err == ""
    assert Photo.objects.count() == 1
    assert stored() == before


def test_a_file_over_the_size_limit_is_refused_unread(party: Path) -> None:
    before = stored()
    huge = party / "Party" / "huge.jpg"
    with huge.open("wb") as handle:
        handle.truncate(101 * 1024 * 1024)  # sparse: costs no disk
    out, _ = run(party)
    assert "0 encoded, 1 failed" in out
    photo = Photo.objects.get(source_id="Party/huge.jpg")
    assert (photo.status, photo.error) == ("failed", "file is 105,906,176 bytes, over the 104,857,600 limit")
    assert stored() == before


def test_a_link_to_a_system_file_is_read_as_a_non_image(party: Path) -> None:
    before = stored()
    (party / "Party" / "passwd.jpg").symlink_to("/etc/passwd")
    out, err = run(party)
    photo = Photo.objects.get(source_id="Party/passwd.jpg")
    assert (photo.status, photo.error) == ("failed", UNREADABLE)
    assert "root:" not in out + err + photo.error
    assert stored() == before


def test_a_dangling_link_and_a_folder_named_like_a_photo_are_not_listed(party: Path) -> None:
    before = stored()
    (party / "Party" / "gone.jpg").symlink_to(party / "nowhere.jpg")
    (party / "Party" / "folder.jpg").mkdir()
    out, err = run(party)
    assert "0 new, 0 changed or retried, 1 unchanged" in out and err == ""
    assert stored() == before


def test_a_photo_that_becomes_garbage_is_failed_and_loses_its_faces_only(party: Path, face: bytes) -> None:
    """The file of a stored photo is overwritten with garbage: that photo fails; nothing else changes."""
    (party / "Party" / "second.jpg").write_bytes(face)
    run(party)
    before = stored()
    (party / "Party" / "second.jpg").write_bytes(hostile.truncated_jpeg(face))
    out, _ = run(party)
    assert "0 new, 1 changed or retried, 1 unchanged, 0 removed photos; 0 encoded, 1 failed" in out
    second = Photo.objects.get(source_id="Party/second.jpg")
    assert (second.status, second.error) == ("failed", TRUNCATED)
    assert stored() == before


@pytest.mark.slow
def test_every_hostile_file_at_once_in_one_run(party: Path, face: bytes) -> None:
    """All of RECORDED in one album: one run, each photo's own outcome."""
    before = stored()
    for _, name, maker, _ in RECORDED:
        (party / "Party" / name).write_bytes(maker(face))
    out, _ = run(party)
    failed = sum(1 for *_, (status, _, _) in RECORDED if status == "failed")
    assert f"{len(RECORDED)} new" in out
    assert f"{len(RECORDED) - failed} encoded, {failed} failed" in out
    outcome = {p.source_id: (p.status, p.error) for p in Photo.objects.exclude(source_id="Party/obama2.jpg")}
    assert outcome == {f"Party/{name}": (status, error) for _, name, _, (status, error, _) in RECORDED}
    assert stored() == before


def _member() -> Member:
    return Member.objects.get(username="barack")


@pytest.mark.slow
def test_the_member_is_matched_in_the_honest_odd_formats(party: Path, face: bytes) -> None:
    for _, name, maker, (status, _, faces) in RECORDED:
        if status == "done" and faces:
            (party / "Party" / name).write_bytes(maker(face))
    run(party)
    matched = set(Photo.objects.matched_to(_member()).values_list("source_id", flat=True))
    honest = {f"Party/{name}" for _, name, _, (status, _, faces) in RECORDED if status == "done" and faces}
    assert matched == honest | {"Party/obama2.jpg"}
