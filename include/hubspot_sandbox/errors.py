"""HubSpot's error bodies, so clients see the same shapes the real API sends."""

from __future__ import annotations

import uuid
from typing import Any


class HubSpotError(Exception):
    """An error answered with HubSpot's JSON error body (``status``, ``message``, ``category``, ...)."""

    def __init__(
        self,
        status_code: int,
        category: str,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        context: dict[str, Any] | None = None,
        sub_category: str | None = None,
        links: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context
        self.sub_category = sub_category
        self.links = links
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.errors is not None:
            body["errors"] = self.errors
        if self.context is not None:
            body["context"] = self.context
        if self.links is not None:
            body["links"] = self.links
        body.update(self.extra)
        return body


def validation_error(message: str, *, field: str | None = None, status_code: int = 400) -> HubSpotError:
    errors = [{"message": message, "in": field}] if field else None
    return HubSpotError(status_code, "VALIDATION_ERROR", message, errors=errors)


def not_found(message: str) -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", message)


def conflict(message: str) -> HubSpotError:
    return HubSpotError(409, "CONFLICT", message)


def invalid_json(detail: str) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", f"Invalid input JSON on line 1: {detail}")


def unauthorized() -> HubSpotError:
    return HubSpotError(
        401,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
        "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )


def missing_scopes(required: list[str]) -> HubSpotError:
    return HubSpotError(
        403,
        "MISSING_SCOPES",
        "This app hasn't been granted all required scopes to make this call. Read more about required "
        "scopes here: https://developers.hubspot.com/scopes.",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": required},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


def tier_required(feature: str) -> HubSpotError:
    return HubSpotError(
        403,
        "FORBIDDEN",
        f"{feature} requires a Marketing Hub Enterprise subscription or the transactional email add-on.",
        sub_category="PortalProductAccessError.MISSING_PRODUCT_ACCESS",
    )


def rate_limited(policy: str) -> HubSpotError:
    """HubSpot's 429; the middleware adds the ``X-HubSpot-RateLimit-*`` headers."""
    message = (
        "You have reached your daily limit."
        if policy == "DAILY"
        else "You have reached your ten_secondly_rolling limit."
    )
    return HubSpotError(
        429,
        "RATE_LIMITS",
        message,
        extra={"errorType": "RATE_LIMIT", "policyName": policy},
    )


def server_error(status_code: int = 500) -> HubSpotError:
    return HubSpotError(
        status_code,
        "INTERNAL_ERROR",
        "internal error" if status_code == 500 else "The service is temporarily unavailable.",
    )
