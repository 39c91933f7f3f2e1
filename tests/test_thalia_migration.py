"""Moving ThaliaConnection and AlbumAccess from faces to thalia keeps their tables and rows.

The test database is migrated back to before the move (faces at 0006, no
thalia app), given a stored grant and album-access rows through the old
models, and migrated forward: the rows are read back through the new models,
the content type (and with it the admin permissions) is thalia's again, and
the models match the migrations.
"""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from thalia.models import AlbumAccess, ThaliaConnection

# Members back to 0002 too: its later migrations add columns the old model state does not know.
BEFORE = [("faces", "0006_photo_claim"), ("members", "0002_member_thalia_id"), ("thalia", None)]


def migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # a fresh loader sees what is applied now


@pytest.mark.django_db(transaction=True)
def test_migrating_an_existing_database_keeps_the_grant_and_album_access_rows() -> None:
    executor = migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE[:2]).apps
        member = old.get_model("members", "Member").objects.create(username="thalia-7", thalia_id="7")
        old.get_model("faces", "ThaliaConnection").objects.create(
            pk=1,
            access_token="access",
            refresh_token="refresh",
            expires_at=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            scope="photos:read events:read",
            connected_by="admin",
            connected_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
        access = old.get_model("faces", "AlbumAccess")
        access.objects.create(member=member, album_slug="gala")
        access.objects.create(member=member, album_slug="party")
        # Migrating back gave the content types (and their permissions) back to faces.
        faces_type = ContentType.objects.get(app_label="faces", model="thaliaconnection")
        assert not ContentType.objects.filter(app_label="thalia")
    finally:
        migrate(executor.loader.graph.leaf_nodes())
    ContentType.objects.clear_cache()

    stored = ThaliaConnection.objects.get()
    assert (stored.access_token, stored.refresh_token, stored.scope) == (
        "access",
        "refresh",
        "photos:read events:read",
    )
    assert sorted(AlbumAccess.objects.values_list("member__thalia_id", "album_slug")) == [
        ("7", "gala"),
        ("7", "party"),
    ]
    moved = ContentType.objects.get(pk=faces_type.pk)
    assert (moved.app_label, moved.model) == ("thalia", "thaliaconnection")
    assert Permission.objects.get(codename="view_thaliaconnection").content_type_id == faces_type.pk
    assert not ContentType.objects.filter(app_label="faces", model__in=["thaliaconnection", "albumaccess"])


@pytest.mark.django_db
def test_the_models_match_the_migrations() -> None:
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)

    assert out.getvalue().strip() == "No changes detected"
