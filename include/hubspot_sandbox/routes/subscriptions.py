"""Not built yet."""

from __future__ import annotations

from ..routing import Endpoints

endpoints = Endpoints()
