"""Second opinions whose opinion was already delivered are completed.

Before, sending the opinion left the booking under review (or requested): it stayed in the clinic's queue, the
patient's pages said a clinician was still reviewing, and the nightly retention deleted it (with the opinion and
its records) as a request that never became a booking. Each such booking becomes COMPLETED, as sending does now,
with a logged event (no email: the patient had theirs when the opinion was sent). A second opinion the clinic
went on to quote is left alone: its patient may be choosing dates.
"""

from django.db import migrations

NOTE = "opinion delivered (completed by migration 0009)"
OLD_STATES = ("requested", "under_review")


def complete_delivered(apps, schema_editor):
    Booking = apps.get_model("bookings", "Booking")
    BookingEvent = apps.get_model("bookings", "BookingEvent")
    delivered = (Booking.objects.filter(offering__kind="second_opinion", state__in=OLD_STATES,
                                        second_opinion__sent_at__isnull=False)
                 .order_by("pk").values_list("pk", "state"))
    for pk, state in delivered.iterator():
        Booking.objects.filter(pk=pk, state=state).update(state="completed")
        BookingEvent.objects.create(booking_id=pk, from_state=state, to_state="completed", note=NOTE)


def reopen(apps, schema_editor):
    """Back to the state each booking had, for the bookings this migration completed (and nothing else)."""
    Booking = apps.get_model("bookings", "Booking")
    BookingEvent = apps.get_model("bookings", "BookingEvent")
    for event in BookingEvent.objects.filter(note=NOTE, to_state="completed").order_by("pk"):
        Booking.objects.filter(pk=event.booking_id, state="completed").update(state=event.from_state)
        event.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("bookings", "0008_extras_decision"),
    ]

    operations = [
        migrations.RunPython(complete_delivered, reopen),
    ]
