"""Usage samples name their node role and any resource (cluster, cache, metastore, plane)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("agentapi", "0001_initial")]

    operations = [
        migrations.RemoveIndex(model_name="usagerecord", name="agentapi_us_cluster_18ff52_idx"),
        migrations.RenameField(
            model_name="usagerecord", old_name="cluster_id", new_name="resource_id"
        ),
        migrations.AlterField(
            model_name="usagerecord",
            name="resource_id",
            field=models.CharField(max_length=48),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="role",
            field=models.CharField(blank=True, max_length=12),
        ),
        migrations.AddIndex(
            model_name="usagerecord",
            index=models.Index(
                fields=["resource_id", "period_start"], name="agentapi_us_resourc_1f13a9_idx"
            ),
        ),
    ]
