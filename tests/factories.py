"""factory_boy factories for the models tests create directly."""

from __future__ import annotations

import factory
import numpy as np
from django.utils import timezone

from faces.models import Album, FaceEncoding, Photo
from members.models import Member


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
