"""The sandbox's cross-cutting behaviour: auth, errors, rate limits, faults, restarts."""

from __future__ import annotations

import requests


def test_unknown_token_gets_hubspot_401(sandbox):
    response = requests.get(f"{sandbox.url}/account-info/v3/details", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"
