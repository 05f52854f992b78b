# Patient data (issue 10): encrypt what was stored in plain form before 0004, and fill in the access log's new
# columns for old entries. Raw SQL on purpose: the models decrypt on load and would refuse plain values.
# Safe to run again (values already encrypted and files with the EMHF1 header are left alone).

import os
import uuid

from django.conf import settings
from django.db import migrations

COLUMNS = {
    "bookings_patientprofile": ("date_of_birth", "passport_number"),
    "bookings_companion": ("date_of_birth", "passport_number"),
    "bookings_medicalrecord": ("original_name", "description"),
    "bookings_booking": ("questionnaire", "request_note", "decline_reason"),
    "bookings_message": ("body",),
    "bookings_quote": ("treatment_plan",),
}


def encrypt_existing(apps, schema_editor):
    from bookings.patients import crypto

    connection = schema_editor.connection
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, columns in COLUMNS.items():
            for column in columns:
                cursor.execute(f"SELECT id, {quote(column)} FROM {quote(table)} WHERE {quote(column)} IS NOT NULL")
                for pk, value in cursor.fetchall():
                    value = str(value)
                    if value == "" or crypto.is_encrypted(value):
                        continue
                    cursor.execute(f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE id = %s",
                                   [crypto.encrypt_text(value), pk])
        # the profile's passport lookup hash
        cursor.execute("SELECT id, passport_number FROM bookings_patientprofile WHERE passport_number <> ''")
        for pk, value in cursor.fetchall():
            cursor.execute("UPDATE bookings_patientprofile SET passport_number_hash = %s WHERE id = %s",
                           [crypto.lookup_hash(crypto.decrypt_text(value)), pk])
        # the access log's owner, booking and target for entries written before 0004
        cursor.execute("SELECT a.id, r.id, r.owner_id, r.booking_id FROM bookings_recordaccess a "
                       "JOIN bookings_medicalrecord r ON r.id = a.record_id WHERE a.patient_id IS NULL")
        for pk, record_id, owner_id, booking_id in cursor.fetchall():
            cursor.execute("UPDATE bookings_recordaccess SET patient_id = %s, booking_id = %s, target = %s, "
                           "kind = 'record' WHERE id = %s", [owner_id, booking_id, str(uuid.UUID(str(record_id))), pk])
        cursor.execute("SELECT file FROM bookings_medicalrecord")
        names = [row[0] for row in cursor.fetchall()]
    root = str(settings.PRIVATE_MEDIA_ROOT)
    for name in names:
        path = os.path.join(root, name)
        if name and os.path.isfile(path):
            crypto.reencrypt_file(path)


class Migration(migrations.Migration):

    dependencies = [("bookings", "0004_patient_data")]

    operations = [migrations.RunPython(encrypt_existing, migrations.RunPython.noop, elidable=False)]
