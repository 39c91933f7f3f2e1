"""factory_boy factories for the models tests create directly."""

from __future__ import annotations

import io
import uuid

import factory
import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from faces.models import Album, FaceEncoding, Match, Photo
from members.models import Member, ReferenceFace


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"member{n}")
    password = factory.django.Password("correct horse battery")
    consent_given_at = factory.LazyFunction(timezone.now)


class AlbumFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Album

    source = Album.Source.FOLDER
    source_id = factory.Sequence(lambda n: f"album-{n}")
    title = factory.Sequence(lambda n: f"Album {n}")


class PhotoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Photo

    album = factory.SubFactory(AlbumFactory)
    source_id = factory.Sequence(lambda n: f"photo-{n}.jpg")
    status = Photo.Status.DONE


def face_with(photo: Photo, vector: np.ndarray, using: str = "default") -> FaceEncoding:
    """A stored photo face with a given encoding."""
    face = FaceEncoding(photo=photo, top=0, right=10, bottom=10, left=0)
    face.set_encoding(vector)
    face.save(using=using)
    return face


def jpeg(size: tuple[int, int] = (64, 48), color: str = "white") -> bytes:
    """A small JPEG without a face."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def reference_with(
    member: Member,
    vector: np.ndarray,
    *,
    image: bytes | None = None,
    box: tuple[int, int, int, int] = (0, 10, 10, 0),
) -> ReferenceFace:
    """A stored selfie of member (file in media storage) with a given encoding and box (top, right, bottom, left)."""
    top, right, bottom, left = box
    reference = ReferenceFace(member=member, top=top, right=right, bottom=bottom, left=left)
    reference.set_encoding(vector)
    reference.image.save(f"{uuid.uuid4().hex}.jpg", ContentFile(image or jpeg()), save=False)
    reference.save()
    return reference


def unit(index: int) -> np.ndarray:
    """An encoding far (√2) from every other unit(i): one person per index."""
    vector = np.zeros(128)
    vector[index] = 1.0
    return vector


def matched_photo(
    member: Member, reference: ReferenceFace, *, album: Album | None = None, **fields: object
) -> Photo:
    """A photo with one face at the reference's encoding, matched to the member."""
    photo = PhotoFactory(album=album or AlbumFactory(), **fields)
    face = face_with(photo, reference.encoding)
    Match.objects.create(member=member, reference=reference, face=face, distance=0.0)
    return photo


def member_with_stored_selfie(username: str = "barack") -> Member:
    """A member with one stored selfie (file and encoding), matched in one stored photo.

    The state an upload must leave untouched when it is refused or fails.
    """
    member = MemberFactory(username=username)
    vector = np.full(128, 0.03, dtype=np.float32)
    reference = ReferenceFace(member=member, top=0, right=10, bottom=10, left=0)
    reference.set_encoding(vector)
    reference.image.save("before.jpg", ContentFile(b"\xff\xd8before"), save=False)
    reference.save()
    matched_photo(member, reference)
    return member
