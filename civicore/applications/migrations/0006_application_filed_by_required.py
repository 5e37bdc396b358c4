import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("applications", "0005_application_filed_by_data"),
    ]

    operations = [
        migrations.AlterField(
            model_name="application",
            name="filed_by",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="identity.person",
            ),
        ),
    ]
