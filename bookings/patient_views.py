from django.contrib.auth.decorators import login_required
from django.http import HttpResponse


@login_required
def profile(request):
    return HttpResponse("")


@login_required
def records(request):
    return HttpResponse("")


@login_required
def record_download(request, record_id):
    return HttpResponse("")
