"""What the association website granted: Throwback's own connection (one row)
and the website albums each member who logged in with Thalia may see.

Both tables were made by faces' migration 0003 and keep their names
(`Meta.db_table`): the models moved to this app, the rows did not move
(see thalia/migrations/0001_initial.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ThaliaConnection(models.Model):
    """Throwback's connection to the website: one row (pk 1), made by `connect_thalia`.

    Access tokens last 10 hours; a refresh revokes the old access token and
    rotates the refresh token, so renewals run one at a time under this row's
    lock (`thalia.grant.importer_token_renew`). Tokens are never shown anywhere.
    """

    SINGLETON_PK = 1

    access_token = models.TextField()
    refresh_token = models.TextField()
    expires_at = models.DateTimeField()
    scope = models.CharField(max_length=500, blank=True)
    connected_by = models.CharField(max_length=150, blank=True, help_text="Who ran connect_thalia.")
    connected_at = models.DateTimeField()
    refreshed_at = models.DateTimeField(null=True, blank=True)
    # The last failed renewal (empty after a good one): the site refused the
    # refresh token, or could not be reached.
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "faces_thaliaconnection"
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="thaliaconnection_single_row")]

    def __str__(self) -> str:
        return f"connection to the website (by {self.connected_by or 'unknown'})"


class AlbumAccess(models.Model):
    """One website album (by slug) the site reports as accessible to a member.

    Written from the member's own token at login and when stale; a Thalia
    member sees website albums only through these rows (`Photo.objects.matched_to`
    and faces/selectors.py read them).
    """

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="album_access"
    )
    album_slug = models.CharField(max_length=255)

    class Meta:
        db_table = "faces_albumaccess"
        constraints = [
            models.UniqueConstraint(fields=["member", "album_slug"], name="albumaccess_unique_member_slug")
        ]

    def __str__(self) -> str:
        return f"{self.member} may see {self.album_slug}"
