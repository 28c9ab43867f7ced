"""The project's Airflow deployment: its shape (shared with docker-compose.yaml) and a native way to run it."""
