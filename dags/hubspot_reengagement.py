from reengagement.campaign_dag import hubspot_reengagement  # noqa: F401  (Airflow's DAG, from the installed provider)
