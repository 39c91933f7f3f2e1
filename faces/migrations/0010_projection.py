"""The projection columns pc0 … pc28 and pc_norm2 (faces/projection.py) on faces and centroids, filled from the encodings."""

from django.db import migrations, models

import faces.fields

# Frozen here: the number of axes when this migration was written.
AXES = 29
TABLES = ("faces_faceencoding", "faces_facecluster")


def fill(apps, schema_editor):
    """Compute every existing row's projection with the shipped axes (one UPDATE per table)."""
    from faces.matching import projection_refresh

    for table in TABLES:
        projection_refresh(table, connection=schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("faces", "0009_importrun_owner_heartbeat_resumed"),
    ]

    operations = [
        *(
            migrations.AddField(
                model_name=model,
                name=name,
                field=faces.fields.RealField(default=0.0),
                preserve_default=False,
            )
            for model in ("faceencoding", "facecluster")
            for name in (*(f"pc{i}" for i in range(AXES)), "pc_norm2")
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="faceencoding",
            index=models.Index(
                fields=["cluster"],
                include=["id", "pc_norm2", *(f"pc{i}" for i in range(AXES))],
                name="face_cluster_projection",
            ),
        ),
    ]
