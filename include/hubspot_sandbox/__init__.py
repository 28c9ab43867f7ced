"""A local HubSpot portal for running, testing and benchmarking the permission-pass campaign.

It answers the HubSpot endpoints the campaign uses with HubSpot's shapes (validated against HubSpot's
OpenAPI files), keeps its state in SQLite, simulates sending, and exposes ``/_sandbox`` admin endpoints
for seeding, fault injection and reading what happened.
"""
