# The clinic's answer about an extra: its reason when it cannot provide it, and what was refunded for it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('bookings', '0007_translated_extra_notes'),
    ]

    operations = [
        migrations.AddField(
            model_name='bookingextra',
            name='decision_note',
            field=models.TextField(blank=True, max_length=1000),
        ),
        migrations.AddField(
            model_name='bookingextra',
            name='refunded',
            field=models.BigIntegerField(default=0),
        ),
    ]
