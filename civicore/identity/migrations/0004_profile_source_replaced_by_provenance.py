from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('identity', '0003_profile_provenance_data'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='profileitem',
            name='source',
        ),
        migrations.AddIndex(
            model_name='profileitem',
            index=models.Index(condition=models.Q(('lookup_hash', ''), _negated=True), fields=['key', 'lookup_hash'], name='identity_item_lookup'),
        ),
        migrations.AddConstraint(
            model_name='profileitem',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('agency__isnull', True), ('source_kind', 'declared')), models.Q(('agency__isnull', False), ('source_kind', 'agency')), _connector='OR'), name='identity_item_source_has_agency'),
        ),
    ]
