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
    class Meta:
        model = Member
        fields = ("username",)
        field_classes = {"username": UsernameField}
