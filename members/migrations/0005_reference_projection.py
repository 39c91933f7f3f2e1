"""The projection columns pc0 … pc28 and pc_norm2 (faces/projection.py) on references, filled from the encodings."""

from django.db import migrations, models

import faces.fields

# Frozen here: the number of axes when this migration was written.
AXES = 29


def fill(apps, schema_editor):
    """Compute every existing reference's projection with the shipped axes (one UPDATE)."""
    from faces.matching import projection_refresh

    projection_refresh("members_referenceface", connection=schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0004_reference_kinds_and_limits"),
        ("faces", "0010_projection"),
    ]

    operations = [
        *(
            migrations.AddField(
                model_name="referenceface",
                name=name,
                field=faces.fields.RealField(default=0.0),
                preserve_default=False,
            )
            for name in (*(f"pc{i}" for i in range(AXES)), "pc_norm2")
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="referenceface",
            index=models.Index(
                fields=["id"],
                include=["match_limit", "pc_norm2", *(f"pc{i}" for i in range(AXES))],
                name="reference_projection",
            ),
        ),
    ]
