from django.db import migrations

from workflow_api.core.append_only import AppendOnly


class Migration(migrations.Migration):
    dependencies = [("workflow", "0001_initial")]

    operations = [AppendOnly("workflow_workflowversion")]
