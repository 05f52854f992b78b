"""Wagtail preview in any of the site's languages: each language is a preview mode of every page type."""

from django.conf import settings
from django.utils import translation


class LanguagePreviewMixin:
    """Editors pick the language in Wagtail's preview panel; the page renders as a reader of it sees it."""

    @property
    def preview_modes(self):
        return list(settings.LANGUAGES)

    @property
    def default_preview_mode(self):
        return settings.LANGUAGE_CODE

    def serve_preview(self, request, mode_name):
        language = mode_name if mode_name in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = super().serve_preview(request, mode_name)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()  # inside the language: a TemplateResponse renders lazily
        return response
