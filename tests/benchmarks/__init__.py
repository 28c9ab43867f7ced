"""Benchmarks of the HubSpot sandbox (``make bench``)."""
