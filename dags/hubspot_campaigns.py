"""The campaigns declared in ``campaigns.yaml``: one Airflow DAG each, ``hubspot_reengagement__<id>``.

The file is ``[hubspot_reengagement] campaigns_file``, by default ``campaigns.yaml`` next to this one; without
it, this file defines no DAG. A campaign with a mistake is left out and named in this file's import error;
the others load (``reengagement.campaigns_file``).
"""

# Airflow's safe mode parses only files that mention "airflow" and "dag": this one builds the campaign DAGs.
from pathlib import Path

from reengagement.campaigns_file import build_campaign_dags, configured_campaigns_file

globals().update(build_campaign_dags(configured_campaigns_file(Path(__file__).parent)))
