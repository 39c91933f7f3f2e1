"""ThaliaConnection and AlbumAccess move here from the faces app, rows and all.

Their tables (faces_thaliaconnection, faces_albumaccess, made by faces 0003)
stay as they are: this migration only tells Django's model state that the
models now belong to `thalia` (faces 0007 removes them from faces' state),
and moves their content types, so admin permissions and log entries follow.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

MOVED = ("thaliaconnection", "albumaccess")


def relabel_content_types(apps, schema_editor, *, old, new):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MOVED:
        if not ContentType.objects.using(db).filter(app_label=new, model=model).exists():
            ContentType.objects.using(db).filter(app_label=old, model=model).update(app_label=new)


def move_content_types(apps, schema_editor):
    relabel_content_types(apps, schema_editor, old="faces", new="thalia")


def move_content_types_back(apps, schema_editor):
    relabel_content_types(apps, schema_editor, old="thalia", new="faces")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("faces", "0006_photo_claim"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ThaliaConnection",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("access_token", models.TextField()),
                        ("refresh_token", models.TextField()),
                        ("expires_at", models.DateTimeField()),
                        ("scope", models.CharField(blank=True, max_length=500)),
                        (
                            "connected_by",
                            models.CharField(blank=True, help_text="Who ran connect_thalia.", max_length=150),
                        ),
                        ("connected_at", models.DateTimeField()),
                        ("refreshed_at", models.DateTimeField(blank=True, null=True)),
                        ("last_error", models.TextField(blank=True)),
                    ],
                    options={
                        "db_table": "faces_thaliaconnection",
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("pk", 1)), name="thaliaconnection_single_row"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="AlbumAccess",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("album_slug", models.CharField(max_length=255)),
                        (
                            "member",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="album_access",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "faces_albumaccess",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("member", "album_slug"), name="albumaccess_unique_member_slug"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
