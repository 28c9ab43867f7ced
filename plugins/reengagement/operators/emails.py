"""The permission-pass email: create it (step 3), send it exactly once, read its metrics (step 4)."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import lineage
from ..errors import HubSpotError, HubSpotTransientError, HubSpotValidationError
from ..links import HubSpotObjectLink, email_url
from .base import HubSpotOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..lineage import Lineage

#: Shipped in the package (package data), so an installed provider has it wherever it runs.
DEFAULT_BODY = Path(__file__).resolve().parents[1] / "templates" / "permission_pass.html"
CONFIRM_PLACEHOLDER = re.compile(r"\{\{\s*confirm_url\s*\}\}")
#: States in which HubSpot has sent (or will send) the email: publishing again must not happen.
SENT_STATES = frozenset(
    {
        "PUBLISHED",
        "PUBLISHED_OR_SCHEDULED",
        "SCHEDULED",
        "SCHEDULED_OR_PUBLISHED",
        "PROCESSING",
        "PRE_PROCESSING",
        "AUTOMATED_SENDING",
    }
)
#: Publishes of one email in one try: each after HubSpot's state showed the previous one had not landed.
PUBLISH_ATTEMPTS = 3
METRICS = ("selected", "sent", "delivered", "bounce", "open", "click", "unsubscribed", "suppressed")
BODY_WIDGET = "module-0-1-1"


def render_body(template: str, confirm_url: str) -> str:
    """The email body with the CTA pointing at ``confirm_url``; HubSpot's own tokens stay untouched."""
    if not CONFIRM_PLACEHOLDER.search(template):
        raise ValueError("the email body has no {{ confirm_url }} link, so nobody could confirm")
    return CONFIRM_PLACEHOLDER.sub(html.escape(confirm_url, quote=True), template)


def is_sent(email: dict[str, Any]) -> bool:
    return bool(email.get("isPublished") or email.get("publishedAt")) or email.get("state") in SENT_STATES


class CreatePermissionEmailOperator(HubSpotOperator):
    """Create the round's permission-pass email, or adopt the one a previous try created.

    The email goes to the round's recipients list under the campaign's subscription type, with
    ``suppressGraymail`` off (the whole point is to reach unengaged contacts) and a CTA to the
    confirmation page. It is built from ``reengagement/templates/permission_pass.html``, or cloned from a
    designed template email whose body contains ``{{ confirm_url }}``.

    :param email_name: deterministic name of the email (see ``campaign.object_name``).
    :param recipients_list_id: the round's recipients list (templated).
    :param subscription_id: the subscription type to send under (templated).
    :param confirm_url: the CTA link of this round, with campaign and round in its query.
    :param template_email_id: optional email to clone instead of the built-in body.
    """

    template_fields: Sequence[str] = (
        "email_name",
        "subject",
        "from_name",
        "reply_to",
        "confirm_url",
        "recipients_list_id",
        "subscription_id",
        "template_email_id",
    )
    operator_extra_links = (HubSpotObjectLink(),)
    ui_color = "#bbdefb"

    def __init__(
        self,
        *,
        email_name: str,
        subject: str,
        from_name: str,
        reply_to: str,
        confirm_url: str,
        recipients_list_id: str,
        subscription_id: str,
        template_email_id: str | None = None,
        body_path: str | Path = DEFAULT_BODY,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.email_name = email_name
        self.subject = subject
        self.from_name = from_name
        self.reply_to = reply_to
        self.confirm_url = confirm_url
        self.recipients_list_id = recipients_list_id
        self.subscription_id = subscription_id
        self.template_email_id = template_email_id
        self.body_path = Path(body_path)
        self.hubspot_url: str | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        email = self.hook.find_email_by_name(self.email_name)
        if email is None:
            email = self._create()
        elif is_sent(email):
            self.log.info("Email %r (%s) was already sent; adopting it unchanged.", self.email_name, email["id"])
        else:
            self.log.info("Adopting the draft email %r (%s) and bringing it up to date.", self.email_name, email["id"])
            email = self._patch(email["id"], email)
        portal = self.portal(context)
        self.hubspot_url = email_url(portal["uiDomain"], portal["portalId"], str(email["id"]))
        # No campaign ids here: HubSpot promises them only once the email is published (``send_email``).
        return {"email_id": str(email["id"]), "cta_url": self.confirm_url}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the email made or adopted, and its template email (see :mod:`reengagement.lineage`)."""
        return lineage.create_email(self, task_instance)

    def _settings(self) -> dict[str, Any]:
        return {
            "name": self.email_name,
            "subject": self.subject,
            "from": {"fromName": self.from_name, "replyTo": self.reply_to},
            "to": {
                "contactIlsLists": {"include": [str(self.recipients_list_id)], "exclude": []},
                "suppressGraymail": False,
            },
            "subscriptionDetails": {"subscriptionId": str(self.subscription_id)},
        }

    def _create(self) -> dict[str, Any]:
        if self.template_email_id:
            template_id = str(self.template_email_id)
            email = self._create_once(lambda: self.hook.clone_email(template_id, self.email_name))
            self.log.info(
                "Cloned template email %s into %r (%s).", self.template_email_id, self.email_name, email["id"]
            )
            return self._patch(email["id"], email)
        body = render_body(self.body_path.read_text(encoding="utf-8"), self.confirm_url)
        request = {
            **self._settings(),
            "subcategory": "batch",
            "sendOnPublish": True,
            "content": {
                "templatePath": "@hubspot/email/dnd/plain_text.html",
                "widgets": {BODY_WIDGET: _rich_text(body)},
            },
        }
        email = self._create_once(lambda: self.hook.create_email(request))
        self.log.info("Created email %r (%s) for list %s.", self.email_name, email["id"], self.recipients_list_id)
        return email

    def _create_once(self, create: Any) -> dict[str, Any]:
        """Create, or find what a dropped connection may have created: never two emails of one name."""
        try:
            return create()  # type: ignore[no-any-return]
        except HubSpotTransientError:
            found = self.hook.find_email_by_name(self.email_name)
            if found is None:
                raise
            return found

    def _patch(self, email_id: str, email: dict[str, Any]) -> dict[str, Any]:
        update = self._settings()
        widgets = (email.get("content") or {}).get("widgets") or {}
        if self.template_email_id or widgets:
            update["content"] = {"widgets": _with_cta(widgets, self.confirm_url, self.template_email_id)}
        return self.hook.update_email(email_id, update)


def _rich_text(body: str) -> dict[str, Any]:
    return {
        "body": {"html": body, "path": "@hubspot/rich_text", "schema_version": 2, "css_class": "dnd-module"},
        "id": BODY_WIDGET,
        "name": BODY_WIDGET,
        "type": "module",
        "order": 1,
    }


def _with_cta(widgets: dict[str, Any], confirm_url: str, template_id: str | None) -> dict[str, Any]:
    """The widgets with every ``{{ confirm_url }}`` replaced; a template without one is refused."""
    updated, found = {}, False
    for key, widget in widgets.items():
        body = dict((widget or {}).get("body") or {})
        text = body.get("html")
        if isinstance(text, str) and CONFIRM_PLACEHOLDER.search(text):
            body["html"] = render_body(text, confirm_url)
            found = True
        updated[key] = {**widget, "body": body} if body else widget
    if not found and template_id:
        raise HubSpotError(
            f"Template email {template_id} has no {{{{ confirm_url }}}} link in its body: add one "
            "where the confirmation button should point."
        )
    return updated


def campaign_ids_of(email: dict[str, Any]) -> list[str]:
    """The email campaign ids the legacy events API files this email's events under (primary first)."""
    ids = [str(i) for i in email.get("allEmailCampaignIds") or []]
    primary = email.get("primaryEmailCampaignId")
    if primary and str(primary) not in ids:
        ids.insert(0, str(primary))
    return ids


class SendEmailOperator(HubSpotOperator):
    """Send (publish) the email exactly once.

    HubSpot's state decides, not Airflow's try number: an email that is already published or sent
    is recorded and returned, never published again. A publish that got no answer (a 5xx, a timeout,
    a dropped connection) may still be landing, so the email is read back until it shows as sent or
    for as long again as the client waited for the answer; only an email HubSpot still shows unsent
    after that is published again, at most :data:`PUBLISH_ATTEMPTS` times in all.

    The result carries the email campaign ids read from the *published* email (HubSpot does not
    promise them on a draft, and the events API is keyed by them) with the CTA link, so every reader of
    the round's clicks or sends takes both from this task's output.

    :param email_id: the email to send (templated).
    :param cta_url: the email's CTA link, passed on in the result for the readers of its clicks (templated).
    """

    template_fields: Sequence[str] = ("email_id", "cta_url")
    operator_extra_links = (HubSpotObjectLink(),)
    ui_color = "#90caf9"

    def __init__(self, *, email_id: str, cta_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.email_id = email_id
        self.cta_url = cta_url
        self.hubspot_url: str | None = None

    def _get(self) -> dict[str, Any]:
        return self.hook.get_email(str(self.email_id))

    def _publish(self) -> None:
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                self.hook.publish_email(str(self.email_id))
                return
            except HubSpotTransientError as err:
                if self._shows_sent_after_settling():
                    self.log.warning("The publish answer was lost, but HubSpot shows the email as sent.")
                    return
                if attempt == PUBLISH_ATTEMPTS:
                    raise HubSpotTransientError(
                        f"Publishing email {self.email_id} got no answer {attempt} times ({err}), and HubSpot still "
                        "shows it unsent. Clear this task to try again: it reads HubSpot's state first, so a sent "
                        "email is never sent twice."
                    ) from err
                self.log.warning(
                    "Publishing email %s got no answer (%s) and HubSpot still shows it unsent; "
                    "publishing again (attempt %d of %d).",
                    self.email_id,
                    err,
                    attempt + 1,
                    PUBLISH_ATTEMPTS,
                )
            except HubSpotValidationError:
                if not is_sent(self._get()):
                    raise
                return  # an earlier attempt landed late: HubSpot refuses to send it twice

    def _shows_sent_after_settling(self) -> bool:
        """Read the email back until it shows as sent, for as long as the client waits for an answer."""
        return self._settled(is_sent) is not None

    def _settled(self, ready: Any) -> dict[str, Any] | None:
        """The email once ``ready(email)`` holds, read back for as long as the client waits for an answer."""
        deadline = time.monotonic() + self.hook.timeout[1]
        pause = 0.5
        while not ready(email := self._get()):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 10.0)
        return email

    def _with_campaign_ids(self, email: dict[str, Any]) -> dict[str, Any]:
        """The sent email once HubSpot shows its campaign ids: without them no click or send could be read."""
        if campaign_ids_of(email):
            return email
        settled = self._settled(lambda e: bool(campaign_ids_of(e)))
        if settled is None:
            raise HubSpotTransientError(
                f"Email {self.email_id} is sent, but HubSpot shows no email campaign ids for it yet, and its clicks "
                "and sends are read by those ids. Clear this task to read them again: the email is not sent twice."
            )
        return settled

    def execute(self, context: Context) -> dict[str, Any]:
        email = self._get()
        portal = self.portal(context)
        self.hubspot_url = email_url(portal["uiDomain"], portal["portalId"], str(self.email_id))
        if is_sent(email):
            self.log.info(
                "Email %s was already sent at %s; not sending it again.",
                self.email_id,
                email.get("publishedAt") or email.get("publishDate"),
            )
        else:
            self._publish()
            email = self._get()
            if not is_sent(email):
                raise HubSpotError(
                    f"HubSpot accepted the publish of email {self.email_id} but does not show it as "
                    f"sent (state {email.get('state')})."
                )
            self.log.info("Sent email %s (state %s).", self.email_id, email.get("state"))
        email = self._with_campaign_ids(email)
        sent_at = email.get("publishedAt") or email.get("publishDate")
        self.log.info(
            "Email %s is filed under email campaign id(s) %s.", self.email_id, ", ".join(campaign_ids_of(email))
        )
        return {
            "email_id": str(self.email_id),
            "campaign_ids": campaign_ids_of(email),
            "sent_at": sent_at,
            "cta_url": self.cta_url,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the email sent (see :mod:`reengagement.lineage`)."""
        return lineage.send_email(self, task_instance)


class EmailMetricsOperator(HubSpotOperator):
    """Step 4: read the email's post-send counters, log them as a table, push them as counts.

    :param email_id: the email whose statistics to read (templated).
    """

    template_fields: Sequence[str] = ("email_id",)
    ui_color = "#e1bee7"

    def __init__(self, *, email_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.email_id = email_id

    def execute(self, context: Context) -> dict[str, Any]:
        counters = self.hook.email_counters(str(self.email_id))
        metrics = {name: int(counters.get(name) or 0) for name in METRICS}
        width = max(len(n) for n in METRICS)
        table = "\n".join(f"  {name:<{width}}  {value:>9,}" for name, value in metrics.items())
        self.log.info("Metrics of email %s:\n%s", self.email_id, table)
        return {"email_id": str(self.email_id), **metrics}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Lineage | None:
        """OpenLineage: the email whose statistics were read (see :mod:`reengagement.lineage`)."""
        return lineage.email_metrics(self, task_instance)
