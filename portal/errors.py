import sys

from django.shortcuts import render

from .outage import outage_cause, unavailable_response


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


def server_error(request):
    """A 500 — unless the error is PostgreSQL, Redis or the broker being unreachable: then a clean 503 with a
    retry message and ``Retry-After`` (portal.outage), rendered without the database or the cache."""
    cause = outage_cause(sys.exc_info()[1])
    if cause:
        return unavailable_response(request, cause)
    return render(request, "500.html", status=500)
