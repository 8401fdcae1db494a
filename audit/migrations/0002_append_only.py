from django.db import migrations

from workflow_api.core.append_only import AppendOnly


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [AppendOnly("audit_auditevent")]
