"""The projection columns pc0 … pc23 (faces/projection.py) on faces and centroids, filled from the encodings."""

from django.db import migrations

import faces.fields

# Frozen here: the number of axes when this migration was written.
AXES = 24
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
                name=f"pc{i}",
                field=faces.fields.RealField(default=0.0),
                preserve_default=False,
            )
            for model in ("faceencoding", "facecluster")
            for i in range(AXES)
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
