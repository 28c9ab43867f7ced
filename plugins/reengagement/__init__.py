"""HubSpot permission-pass building blocks for Airflow: hook, operators, sensors and pure rules."""
