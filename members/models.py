"""Members, their consent, and the reference faces ("selfies") they upload."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from faces.fields import PROJECTION_FIELDS, PROJECTION_NORM_FIELD, ProjectedEncodingModel


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


class ReferenceFaceQuerySet(models.QuerySet["ReferenceFace"]):
    def selfies(self) -> ReferenceFaceQuerySet:
        """The selfies members uploaded: the only references ever shown or counted against the limit."""
        return self.filter(kind=ReferenceFace.Kind.SELFIE)


class ReferenceFace(ProjectedEncodingModel):
    """A face a member is matched with: an uploaded selfie, or one Throwback derived from them.

    Selfies carry the image and the box of their one face. The other kinds
    have no image and are never shown to anyone (docs/accuracy.md): the mean
    of two or more selfies' encodings (`MEAN`), a photo face matched far
    inside a selfie's limit (`LEARNED`), and a photo face the member said
    "Yes, that's me" about (`CONFIRMED`); the last two point at that face.
    Each reference matches the photo faces within its own `match_limit`.
    """

    class Kind(models.TextChoices):
        SELFIE = "selfie", "Selfie"
        MEAN = "mean", "Mean of the selfies"
        LEARNED = "learned", "Learned from a confident match"
        CONFIRMED = "confirmed", "Confirmed by the member"

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="references")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SELFIE)
    # Stored under a random name (see services.reference_add), never served publicly.
    image = models.ImageField(upload_to="references/", max_length=200, blank=True)
    top = models.PositiveIntegerField(default=0)
    right = models.PositiveIntegerField(default=0)
    bottom = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)
    # A photo face is matched when its distance is at most this (faces.limits).
    match_limit = models.FloatField(default=0.49)
    # LEARNED and CONFIRMED: the photo face this reference copies; it goes with it.
    source_face = models.ForeignKey(
        "faces.FaceEncoding", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Selfies: why this selfie may find few photos ("small", "dark", "blurred", "turned").
    warnings = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    objects = ReferenceFaceQuerySet.as_manager()

    class Meta:
        ordering = ["created", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(match_limit__gte=0), name="reference_limit_positive"),
            models.UniqueConstraint(
                fields=["member", "source_face"],
                condition=models.Q(source_face__isnull=False),
                name="reference_unique_member_source_face",
            ),
        ]
        indexes = [
            # A new face is compared with every reference's projection read from
            # this index alone (PostgreSQL; elsewhere it is on id only).
            models.Index(
                fields=["id"],
                include=["match_limit", PROJECTION_NORM_FIELD, *PROJECTION_FIELDS],
                name="reference_projection",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display().lower()} {self.pk} of {self.member}"

    @property
    def warning_messages(self) -> list[str]:
        """What each stored warning means, in the member's words."""
        from members.selfie_quality import MESSAGES

        return [MESSAGES[code] for code in self.warnings if code in MESSAGES]


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
