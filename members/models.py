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
