"""Translations of third-party apps' messages: django-allauth in Kazakh and Tajik, corrections of allauth's Chinese,
and Django's password rules where Django's Kazakh, Tajik and Uzbek catalogues lack them.

Only a ``locale/`` folder: Django merges app catalogues so that an app listed earlier in
INSTALLED_APPS wins, and this app is listed directly before "allauth". It holds no Python or template
strings marked for translation, so ``makemessages`` finds nothing here and never rewrites these .po files.
"""
