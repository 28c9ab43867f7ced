"""Thin Airflow operators over :class:`~reengagement.hook.HubSpotHook`, one module per HubSpot area."""
