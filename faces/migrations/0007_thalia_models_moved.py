"""ThaliaConnection and AlbumAccess now belong to the thalia app (thalia 0001).

State only: their tables and rows stay where they are.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("faces", "0006_photo_claim"),
        ("thalia", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="AlbumAccess"),
                migrations.DeleteModel(name="ThaliaConnection"),
            ],
            database_operations=[],
        ),
    ]
