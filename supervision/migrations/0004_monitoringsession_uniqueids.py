# Channel names start again at 00000000 after an Asterisk restart: the uniqueids tell the calls apart.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('supervision', '0003_recording'),
    ]

    operations = [
        migrations.AddField(
            model_name='monitoringsession',
            name='spy_uniqueid',
            field=models.CharField(blank=True, max_length=64, verbose_name='spy channel uniqueid'),
        ),
        migrations.AddField(
            model_name='monitoringsession',
            name='target_uniqueid',
            field=models.CharField(blank=True, max_length=64, verbose_name='target channel uniqueid'),
        ),
    ]
