"""Forms: consent, selfie upload, and (demo only) sign-up."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm, UsernameField

from members.models import Member


class ConsentForm(forms.Form):
    agree = forms.BooleanField(
        required=True,
        label="I agree that Throwback stores the face encoding of my selfies and which photos I appear in.",
    )


class NotificationsForm(forms.Form):
    """The digest opt-in on the privacy page: off by default, an address when on."""

    notify = forms.BooleanField(
        required=False, label="Email me when an import finds new photos of me (one mail per import)"
    )
    email = forms.EmailField(required=False, label="Email address")

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("notify") and not cleaned.get("email"):
            self.add_error("email", "Enter the address the mails should go to.")
        return cleaned


class DeleteDataForm(forms.Form):
    confirm = forms.BooleanField(
        required=True,
        label="I understand that my selfies, their face encodings and my matches are deleted for good.",
    )
    delete_account = forms.BooleanField(
        required=False,
        label="Also delete my Throwback account (you are logged out).",
    )


class ReferenceUploadForm(forms.Form):
    # A FileField, not ImageField: the service decodes the image once and says
    # precisely what is wrong with it.
    image = forms.FileField(label="Your selfie")


class SignupForm(UserCreationForm[Member]):
    """Demo sign-up: a username, an optional address (password resets) and a password twice."""

    email = forms.EmailField(
        required=False,
        label="Email address (optional)",
        help_text="Only to reset a forgotten password, or for emails about new photos if you ask for them.",
    )

    class Meta:
        model = Member
        fields = ("username", "email")
        field_classes = {"username": UsernameField}
