"""Editors' admin: a translation status report of the catalogue's pages (what is missing, at a glance)."""

from django.conf import settings
from django.contrib.auth.decorators import user_passes_test
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from .models import ClinicPage, ServicePage, SpecialtyPage

CHECKED = {
    ServicePage: ("title", "summary", "description", "course"),
    SpecialtyPage: ("title", "summary"),
    ClinicPage: ("title", "summary", "description"),
}


def translation_status(request):
    langs = [(code, code.replace("-", "_"), name) for code, name in settings.LANGUAGES]
    rows = []
    for model, fields in CHECKED.items():
        columns = ["id", "path"] + [f"{f}_{suffix}" for f in fields for _c, suffix, _n in langs]
        for values in model.objects.order_by("path").values(*columns):
            missing = {code: [f for f in fields if not values[f"{f}_{suffix}"]] for code, suffix, _n in langs}
            rows.append({"id": values["id"], "title": values["title_en"] or values["title_ru"], "kind":
                         model._meta.verbose_name, "missing": [missing[code] for code, _s, _n in langs],
                         "complete": not any(missing.values())})
    only_missing = request.GET.get("missing") == "1"
    if only_missing:
        rows = [r for r in rows if not r["complete"]]
    return render(request, "catalog/translation_status.html", {
        "rows": rows, "langs": langs, "only_missing": only_missing,
        "totals": [sum(1 for r in rows if not r["missing"][i]) for i in range(len(langs))],
    })


@hooks.register("register_admin_urls")
def urls():
    view = user_passes_test(lambda u: u.is_active and u.has_perm("wagtailadmin.access_admin"))(translation_status)
    return [path("translation-status/", view, name="translation_status")]


@hooks.register("register_admin_menu_item")
def menu_item():
    return MenuItem(_("Translation status"), reverse("translation_status"), icon_name="doc-full", order=900)
