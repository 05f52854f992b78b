"""Keep derived data true: the page cache, the rates cache and each service's search text."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from wagtail.signals import page_published, page_unpublished, post_page_move

from portal.pagecache import invalidate

from .currency import forget_rates
from .models import ExchangeRate, Offering, ServicePage, SpecialtyPage


@receiver(page_published)
@receiver(page_unpublished)
def page_changed(sender, instance, **kwargs):
    if isinstance(instance.specific, SpecialtyPage):
        refresh_search_text(ServicePage.objects.child_of(instance))
    invalidate()


@receiver(post_page_move)
def page_moved(sender, instance, **kwargs):
    specific = instance.specific
    if isinstance(specific, ServicePage):
        refresh_search_text([specific])
    invalidate()


@receiver(post_save, sender=ExchangeRate)
@receiver(post_delete, sender=ExchangeRate)
def rates_changed(sender, **kwargs):
    forget_rates()
    invalidate()


@receiver(post_save, sender=Offering)
def offering_changed(sender, **kwargs):
    invalidate()


def refresh_search_text(services):
    for service in services:
        service = service.specific if hasattr(service, "specific") else service
        text, names = service.build_search_text(), service.build_search_names()
        if (text, names) != (service.search_text, service.search_names):
            ServicePage.objects.filter(pk=service.pk).update(search_text=text, search_names=names)
