# Patient data (issue 10): encrypted columns, the data access log, consent, exports, restrictions, retention.

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import bookings.patients.crypto
import bookings.patients.models


class Migration(migrations.Migration):

    dependencies = [
        ('bookings', '0003_translated_resource_names'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Consent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('version', models.CharField(max_length=20)),
                ('language', models.CharField(max_length=10)),
                ('text', models.TextField()),
                ('given_at', models.DateTimeField(auto_now_add=True)),
                ('ip', models.GenericIPAddressField(blank=True, null=True)),
                ('withdrawn_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-given_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='DataExport',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('status', models.CharField(default='pending', max_length=10)),
                ('file', models.FileField(blank=True, max_length=300, storage=bookings.patients.models.private_storage, upload_to=bookings.patients.models.export_path)),
                ('size', models.BigIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('ready_at', models.DateTimeField(blank=True, null=True)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='Restriction',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('reason', models.TextField()),
                ('keep_until', models.DateField()),
                ('identity', bookings.patients.crypto.EncryptedTextField(blank=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name='RetentionNotice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('warned_at', models.DateTimeField()),
                ('erase_after', models.DateTimeField()),
            ],
        ),
        migrations.AlterModelOptions(
            name='recordaccess',
            options={'ordering': ['-at', '-id']},
        ),
        migrations.AddField(
            model_name='patientprofile',
            name='passport_number_hash',
            field=models.CharField(blank=True, db_index=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='recordaccess',
            name='booking',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='data_accesses', to='bookings.booking'),
        ),
        migrations.AddField(
            model_name='recordaccess',
            name='kind',
            field=models.CharField(choices=[('record', 'medical record'), ('questionnaire', 'questionnaire and diagnosis'), ('passport', 'passport details'), ('visa_letter', 'visa support letter')], default='record', max_length=20),
        ),
        migrations.AddField(
            model_name='recordaccess',
            name='patient',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='data_accesses', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='recordaccess',
            name='target',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AlterField(
            model_name='booking',
            name='decline_reason',
            field=bookings.patients.crypto.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name='booking',
            name='questionnaire',
            field=bookings.patients.crypto.EncryptedJSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name='booking',
            name='request_note',
            field=bookings.patients.crypto.EncryptedTextField(blank=True),
        ),
        migrations.AlterField(
            model_name='companion',
            name='date_of_birth',
            field=bookings.patients.crypto.EncryptedDateField(verbose_name='date of birth'),
        ),
        migrations.AlterField(
            model_name='companion',
            name='passport_number',
            field=bookings.patients.crypto.EncryptedCharField(max_length=30, verbose_name='passport number'),
        ),
        migrations.AlterField(
            model_name='medicalrecord',
            name='description',
            field=bookings.patients.crypto.EncryptedCharField(blank=True, max_length=200, verbose_name='description'),
        ),
        migrations.AlterField(
            model_name='medicalrecord',
            name='original_name',
            field=bookings.patients.crypto.EncryptedCharField(max_length=255),
        ),
        migrations.AlterField(
            model_name='message',
            name='body',
            field=bookings.patients.crypto.EncryptedTextField(max_length=5000, verbose_name='message'),
        ),
        migrations.AlterField(
            model_name='patientprofile',
            name='date_of_birth',
            field=bookings.patients.crypto.EncryptedDateField(blank=True, null=True, verbose_name='date of birth'),
        ),
        migrations.AlterField(
            model_name='patientprofile',
            name='passport_number',
            field=bookings.patients.crypto.EncryptedCharField(blank=True, max_length=30, verbose_name='passport number'),
        ),
        migrations.AlterField(
            model_name='quote',
            name='treatment_plan',
            field=bookings.patients.crypto.EncryptedTextField(blank=True, verbose_name='treatment plan'),
        ),
        migrations.AlterField(
            model_name='recordaccess',
            name='record',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='accesses', to='bookings.medicalrecord'),
        ),
        migrations.AddIndex(
            model_name='recordaccess',
            index=models.Index(fields=['patient', '-at'], name='bookings_re_patient_4dee12_idx'),
        ),
        migrations.AddField(
            model_name='consent',
            name='booking',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='consents', to='bookings.booking'),
        ),
        migrations.AddField(
            model_name='consent',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='consents', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='dataexport',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='data_exports', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='restriction',
            name='booking',
            field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='restriction', to='bookings.booking'),
        ),
        migrations.AddField(
            model_name='retentionnotice',
            name='user',
            field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='retention_notice', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='consent',
            constraint=models.UniqueConstraint(condition=models.Q(('withdrawn_at__isnull', True)), fields=('booking',), name='one_live_consent_per_booking'),
        ),
    ]
