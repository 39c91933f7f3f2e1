"""Members, their consent, and the reference faces ("selfies") they upload."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from faces.fields import EncodingModel


class Member(AbstractUser):
    """A local account; consent to face processing is recorded with its time.

    `thalia_id` links the account to a member of the association's website
    (the OpenID Connect `sub`); it is set once, at the first "Log in with
    Thalia", and found again at every later one. Local accounts have none.
    """

    consent_given_at = models.DateTimeField(null=True, blank=True)
    thalia_id = models.CharField(max_length=255, unique=True, null=True, blank=True, editable=False)
    # "New photos of you" digests (members/notifications.py): opted in on the
    # privacy page, off by default. Photos encoded up to `notified_until` have
    # been told (or were there before the member opted in).
    notify_new_photos = models.BooleanField(default=False)
    notified_until = models.DateTimeField(null=True, blank=True)

    @property
    def has_consented(self) -> bool:
        return self.consent_given_at is not None


class ReferenceFace(EncodingModel):
    """One uploaded selfie with exactly one face, and that face's encoding."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="references")
    # Stored under a random name (see services.reference_add), never served publicly.
    image = models.ImageField(upload_to="references/", max_length=200)
    top = models.PositiveIntegerField()
    right = models.PositiveIntegerField()
    bottom = models.PositiveIntegerField()
    left = models.PositiveIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"reference {self.pk} of {self.member}"


class LookAlike(models.Model):
    """Selfies of two members within the match threshold of each other.

    Siblings and twins: photos of one may be shown to the other, so both are
    warned on their selfie page (without anything of the other member) and
    asked to add selfies. One row per pair, the lower selfie id first; kept
    current by members.services (a selfie added, deleted, data deleted) and
    rebuilt by `manage.py rematch`.
    """

    reference = models.ForeignKey(ReferenceFace, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(ReferenceFace, on_delete=models.CASCADE, related_name="+")
    distance = models.FloatField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "look-alike selfie pair"
        constraints = [
            models.UniqueConstraint(fields=["reference", "other"], name="lookalike_unique_pair"),
            models.CheckConstraint(
                condition=models.Q(reference__lt=models.F("other")), name="lookalike_ordered"
            ),
        ]

    def __str__(self) -> str:
        return f"selfies {self.reference_id} and {self.other_id} look alike ({self.distance:.3f})"
