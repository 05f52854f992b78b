"""A trip around the treatment: the extras a clinic offers and a patient chooses, and visa-refusal claims.

Money is integer tenge minor units (tiyn), as everywhere.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from bookings.lifecycle.models import Booking
from portal.l10n import language_name


class OfferingExtra(models.Model):
    """An optional line a clinic offers with an offering: airport transfer, interpreter, nights nearby, a bed
    for a companion. Priced per unit (a transfer, an interpreter's day) or per night; paid with the deposit or at
    the clinic, as the clinic sets."""

    TRANSFER, INTERPRETER, ACCOMMODATION, COMPANION_BED = "transfer", "interpreter", "accommodation", "companion_bed"
    KIND_CHOICES = [(TRANSFER, _("Airport transfer")), (INTERPRETER, _("Interpreter")),
                    (ACCOMMODATION, _("Accommodation near the clinic")), (COMPANION_BED, _("Bed for a companion"))]
    PER_UNIT, PER_NIGHT = "unit", "night"
    UNIT_CHOICES = [(PER_UNIT, _("per unit")), (PER_NIGHT, _("per night"))]
    WITH_DEPOSIT, AT_CLINIC = "deposit", "clinic"
    PAY_CHOICES = [(WITH_DEPOSIT, _("Paid with the deposit")), (AT_CLINIC, _("Paid at the clinic"))]

    offering = models.ForeignKey("catalog.Offering", on_delete=models.CASCADE, related_name="extras",
                                 verbose_name=_("offering"))
    kind = models.CharField(_("kind"), max_length=20, choices=KIND_CHOICES)
    note = models.CharField(_("note"), max_length=200, blank=True,
                            help_text=_("E.g. the hotel's name, or 'both ways'."))
    language = models.CharField(_("language"), max_length=10, blank=True, choices=settings.LANGUAGES,
                                help_text=_("For an interpreter: the patient's language."))
    price = models.BigIntegerField(_("price (minor units)"), validators=[MinValueValidator(0)])
    unit = models.CharField(_("priced"), max_length=10, choices=UNIT_CHOICES, default=PER_UNIT)
    pay_at = models.CharField(_("paid"), max_length=10, choices=PAY_CHOICES, default=AT_CLINIC)
    max_quantity = models.PositiveSmallIntegerField(_("most a patient may take"), default=60,
                                                    validators=[MinValueValidator(1)])
    is_active = models.BooleanField(_("offered"), default=True)

    class Meta:
        ordering = ["offering_id", "kind", "id"]
        verbose_name = _("extra")
        constraints = [models.CheckConstraint(condition=models.Q(price__gte=0), name="offering_extra_price_nonneg")]

    def __str__(self):
        return self.label()

    def label(self) -> str:
        text = str(self.get_kind_display())
        if self.kind == self.INTERPRETER and self.language:
            text = f"{text} ({language_name(self.language)})"
        return f"{text} — {self.note}" if self.note else text


class BookingExtra(models.Model):
    """An extra a patient chose for one booking: price and terms copied from the clinic's offer at that moment;
    the clinic confirms it (or says it cannot provide it) in the desk."""

    REQUESTED, CONFIRMED, DECLINED = "requested", "confirmed", "declined"
    STATUS_CHOICES = [(REQUESTED, _("Waiting for the clinic")), (CONFIRMED, _("Confirmed by the clinic")),
                      (DECLINED, _("The clinic cannot provide it"))]

    booking = models.ForeignKey("bookings.Booking", on_delete=models.CASCADE, related_name="extras")
    extra = models.ForeignKey(OfferingExtra, null=True, on_delete=models.SET_NULL, related_name="chosen")
    kind = models.CharField(max_length=20, choices=OfferingExtra.KIND_CHOICES)
    label = models.CharField(max_length=300)
    unit = models.CharField(max_length=10, choices=OfferingExtra.UNIT_CHOICES)
    unit_price = models.BigIntegerField()
    quantity = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    pay_at = models.CharField(max_length=10, choices=OfferingExtra.PAY_CHOICES)
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default=REQUESTED)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    # the clinic's reason when it cannot provide the extra (the patient reads it), and what was refunded for it
    decision_note = models.TextField(blank=True, max_length=1000)
    refunded = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["booking_id", "id"]
        constraints = [models.UniqueConstraint(fields=["booking", "extra"], name="booking_extra_once")]

    @property
    def total(self) -> int:
        return self.unit_price * self.quantity

    @property
    def with_deposit(self) -> bool:
        return self.pay_at == OfferingExtra.WITH_DEPOSIT


class VisaRefusal(models.Model):
    """A patient's claim that their visa was refused, with the refusal letter: the clinic's coordinator confirms
    it before the booking is cancelled and refunded in full."""

    WAITING, CONFIRMED, REJECTED = "waiting", "confirmed", "rejected"
    STATUS_CHOICES = [(WAITING, _("Waiting for the clinic to confirm")), (CONFIRMED, _("Confirmed")),
                      (REJECTED, _("Not accepted"))]

    booking = models.ForeignKey("bookings.Booking", on_delete=models.CASCADE, related_name="visa_refusals")
    letter = models.ForeignKey("bookings.MedicalRecord", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=STATUS_CHOICES, default=WAITING)
    note = models.TextField(_("note to the clinic"), blank=True, max_length=2000)
    decision_note = models.TextField(blank=True, max_length=2000)
    refunded = models.BigIntegerField(default=0)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["booking"], condition=models.Q(status="waiting"),
                                               name="visa_refusal_one_waiting")]


# --------------------------------------------------------------------------------- signals
# Time frees up when a booking is cancelled, expires or goes back to its quote, and when a calendar changes:
# the waitlist is offered the freed starts once that change commits (bookings.engine.waitlist; beat is the net).

FREEING_STATES = {"cancelled", "expired", "quoted", "declined"}


def _booking_event(sender, instance, created, **kwargs):
    if not created:
        return
    if instance.to_state == "quoted" and instance.from_state == "awaiting_payment":
        _drop_unpaid_extras(instance.booking_id)
    frees = instance.to_state in FREEING_STATES and instance.from_state not in ("", "requested", "under_review")
    if frees and not (instance.to_state == "quoted" and instance.from_state != "awaiting_payment"):
        from bookings.engine.waitlist import trigger  # lazy: a cycle, the waitlist imports bookings.models

        trigger()


def _drop_unpaid_extras(booking_id):
    """The hold ran out and the quote stands: accepting it again sets the price from the quote, so the extras
    chosen for the released dates go (the patient chooses again at the next checkout)."""
    rows = list(BookingExtra.objects.filter(booking_id=booking_id).exclude(status=BookingExtra.DECLINED))
    if not rows:
        return
    booking = Booking.objects.get(pk=booking_id)
    booking.price -= sum(r.total for r in rows)
    booking.deposit -= sum(r.total for r in rows if r.with_deposit)
    booking.save(update_fields=["price", "deposit"])
    BookingExtra.objects.filter(pk__in=[r.pk for r in rows]).delete()


def _calendar_changed(sender, instance, **kwargs):
    from bookings.engine.waitlist import trigger  # lazy: a cycle, the waitlist imports bookings.models

    trigger()


models.signals.post_save.connect(_booking_event, sender="bookings.BookingEvent", dispatch_uid="trip_booking_event")
models.signals.post_save.connect(_calendar_changed, sender="bookings.AvailabilityException",
                                 dispatch_uid="trip_exception_saved")
models.signals.post_delete.connect(_calendar_changed, sender="bookings.AvailabilityException",
                                   dispatch_uid="trip_exception_deleted")
models.signals.post_delete.connect(_calendar_changed, sender="bookings.WeeklyHours", dispatch_uid="trip_hours_set")
