"""Marketing forms v3, read side: where a portal's consent texts and subscription checkboxes live.

The seeded ``forms`` table keeps only what differs between forms (name and ``legalConsentOptions``);
each response wraps it in a complete ``HubSpotFormDefinition`` (an email field, configuration, display
options) so it validates against HubSpot's spec and the SDK deserialises it. A stored form may also
carry any other top-level key of the definition, which then replaces the default.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from .. import errors
from ..portal import iso, portal_of
from ..routing import Endpoints, query_bool, query_int

endpoints = Endpoints()

SCOPES = [["forms"]]
FORM_TYPES = ("hubspot", "captured", "flow", "blog_comment", "all")
MAX_PAGE = 100


def _email_field() -> dict[str, Any]:
    return {
        "objectTypeId": "0-1",
        "name": "email",
        "label": "Email",
        "required": True,
        "hidden": False,
        "fieldType": "email",
        "validation": {"blockedEmailDomains": [], "useDefaultBlockList": False},
        "dependentFields": [],
    }


def _configuration() -> dict[str, Any]:
    return {
        "language": "en",
        "cloneable": True,
        "editable": True,
        "archivable": True,
        "recaptchaEnabled": False,
        "notifyContactOwner": False,
        "notifyRecipients": [],
        "createNewContactForNewEmail": False,
        "prePopulateKnownValues": True,
        "allowLinkToResetKnownValues": False,
        "lifecycleStages": [],
        "postSubmitAction": {"type": "thank_you", "value": "Thanks for submitting the form."},
        "embedType": "V4",
    }


def _display_options() -> dict[str, Any]:
    return {
        "renderRawHtml": False,
        "theme": "default_style",
        "submitButtonText": "Submit",
        "style": {
            "fontFamily": "arial, helvetica, sans-serif",
            "backgroundWidth": "100%",
            "labelTextColor": "#33475b",
            "labelTextSize": "14px",
            "helpTextColor": "#7C98B6",
            "helpTextSize": "11px",
            "legalConsentTextColor": "#33475b",
            "legalConsentTextSize": "14px",
            "submitColor": "#ff7a59",
            "submitAlignment": "left",
            "submitFontColor": "#ffffff",
            "submitSize": "12px",
        },
        "cssClass": "hs-form stacked",
    }


def form_definition(form_id: str, created_at: int, data: dict[str, Any]) -> dict[str, Any]:
    """A complete ``HubSpotFormDefinition`` around the stored parts of one form."""
    definition: dict[str, Any] = {
        "id": form_id,
        "name": data.get("name", form_id),
        "formType": "hubspot",
        "createdAt": iso(created_at),
        "updatedAt": iso(data.get("updatedAt", created_at)),
        "archived": False,
        "fieldGroups": [{"groupType": "default_group", "richTextType": "text", "fields": [_email_field()]}],
        "configuration": _configuration(),
        "displayOptions": _display_options(),
        "legalConsentOptions": data.get("legalConsentOptions", {"type": "none"}),
    }
    definition.update({k: v for k, v in data.items() if k in definition and k not in ("id", "updatedAt")})
    return definition


def _form_types(request: Request) -> list[str]:
    kinds = [k.strip() for value in request.query_params.getlist("formTypes") for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FORM_TYPES]
    if unknown:
        raise errors.validation_error(
            f"Invalid formTypes {', '.join(unknown)}: use one of {', '.join(FORM_TYPES)}.", field="formTypes"
        )
    return kinds


@endpoints.get("/marketing/v3/forms", name="forms.list", scopes=SCOPES)
async def list_forms(request: Request) -> dict[str, Any]:
    portal = portal_of(request)
    limit = query_int(request, "limit", 20, minimum=1, maximum=MAX_PAGE)
    assert limit is not None
    kinds = _form_types(request)
    if query_bool(request, "archived") or (kinds and not {"hubspot", "all"} & set(kinds)):
        return {"results": []}
    after = request.query_params.get("after") or ""
    rows = portal.db.all("SELECT id, created_at, data FROM forms WHERE id > ? ORDER BY id LIMIT ?", (after, limit + 1))
    body: dict[str, Any] = {
        "results": [form_definition(r["id"], r["created_at"], json.loads(r["data"])) for r in rows[:limit]]
    }
    if len(rows) > limit:
        cursor = rows[limit - 1]["id"]
        link = f"{str(request.base_url).rstrip('/')}/marketing/v3/forms?after={cursor}&limit={limit}"
        body["paging"] = {"next": {"after": cursor, "link": link}}
    return body


@endpoints.get("/marketing/v3/forms/{formId}", name="forms.get", scopes=SCOPES)
async def get_form(request: Request, formId: str) -> dict[str, Any]:  # noqa: N803 - HubSpot's name
    portal = portal_of(request)
    row = portal.db.one("SELECT id, created_at, data FROM forms WHERE id = ?", (formId,))
    if row is None or query_bool(request, "archived"):
        raise errors.not_found(f"Form {formId} does not exist.")
    return form_definition(row["id"], row["created_at"], json.loads(row["data"]))
