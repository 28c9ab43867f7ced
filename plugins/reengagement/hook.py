"""HubSpotHook: the project's one way to reach HubSpot (SDK clients, raw requests, paging, batches)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from airflow.sdk import BaseHook

from .api_versions import DEFAULT_API_VERSION, check_version, versioned_path
from .concurrency import DEFAULT_IN_FLIGHT, in_order
from .errors import (
    HubSpotAuthError,
    HubSpotDownloadExpired,
    HubSpotError,
    HubSpotExportLimitError,
    HubSpotForbiddenError,
    HubSpotNotFound,
    HubSpotRateLimited,
    HubSpotTransientError,
    HubSpotValidationError,
)
from .shared_limit import limiter_for
from .transport import GuardedRest, Transport, batch_errors

if TYPE_CHECKING:
    import hubspot
    from airflow.sdk import Connection

DEFAULT_BASE_URL = "https://api.hubapi.com"
#: HubSpot's batch endpoints take at most 100 inputs; memberships pages at most 250; events pages 1000.
BATCH_SIZE = 100
MEMBERSHIPS_PAGE = 250
EVENTS_PAGE = 1000
#: Sent as the User-Agent, with the calling task, so HubSpot's call logs say which step made a call.
USER_AGENT = "hubspot-reengagement"
EXPORTS_PATH = "/crm/v3/exports/export/async"
#: Communication Preferences batch writes, written with their v4 paths (the hook routes them to the version).
UNSUBSCRIBE_ALL_PATH = "/communication-preferences/v4/statuses/batch/unsubscribe-all"
BATCH_WRITE_PATH = "/communication-preferences/v4/statuses/batch/write"
DEFINITIONS_PATH = "/communication-preferences/v4/definitions"
DAILY_USAGE_PATH = "/account-info/v3/api-usage/daily/private-apps"
#: 429 policies that are the ordinary rate limit (wait and retry), not a refusal to export.
_ROLLING_POLICIES = ("TEN_SECONDLY_ROLLING", "SECONDLY", "SECONDLY_ROLLING")
_EXPORT_LIMIT = re.compile(r"export.*limit|limit.*export", re.IGNORECASE | re.DOTALL)


def _unique_addresses(emails: Iterable[str]) -> Iterator[str]:
    """The addresses, trimmed and lowercased, each once, in order, read lazily: a stream of addresses is looked
    up while it is still being produced."""
    seen: set[str] = set()
    for email in emails:
        address = email.strip().lower() if email else ""
        if address and address not in seen:
            seen.add(address)
            yield address


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class EmailEventSource(Protocol):
    """Anything that reads a marketing email's events as the hook does (the report narrows it to a cut-off)."""

    def iter_email_events(
        self, campaign_id: str | int, event_type: str, *, exclude_filtered: bool = True
    ) -> Iterator[dict[str, Any]]:
        """The email's events of one type, newest first."""
        ...


class HubSpotHook(BaseHook):
    """Talks to one HubSpot portal through the official ``hubspot-api-client``.

    The connection (type ``http``) holds the API base URL in host/schema/port (default
    ``https://api.hubapi.com``; a local sandbox works the same way) and, as its password, a Service Key
    (HubSpot's credential for new integrations: Development > Keys > Service keys) or, alternatively, a
    legacy private app token; both are sent as a bearer token. The token is read only from the connection
    and never logged. Every request, through the SDK or :meth:`request`, shares one rate limiter per portal
    (across every worker through Redis when there is one, else per process: :mod:`reengagement.shared_limit`),
    HubSpot's retry rules and one error mapping (:mod:`reengagement.errors`).

    The connection's extra ``{"api_version": "2026-09"}`` names the one HubSpot API version the hook speaks
    (default :data:`~reengagement.api_versions.DEFAULT_API_VERSION`; ``"legacy"`` for the v1-v4 paths). The
    SDK builds legacy URLs, so the path of every request is mapped to that version just before it is sent
    (:func:`~reengagement.api_versions.versioned_path`); endpoints with no date-based equivalent
    (:data:`~reengagement.api_versions.LEGACY_ONLY`) and download URLs keep their paths.

    :param hubspot_conn_id: the Airflow connection to use.
    :param timeout: (connect, read) timeout in seconds for each request.
    :param max_attempts: attempts per request for retryable failures (429, and 5xx/timeouts when the
        request is idempotent).
    :param caller: who makes the calls (``<dag id>/<task id>``), sent in the User-Agent of every request
        so HubSpot's call logs, and the sandbox's, attribute each call to its step.
    :param in_flight: batch calls (look-ups, list adds, opt-outs) running at once, all under the one
        rate limiter, so the limit stays busy while answers are on their way. Default: the connection's
        extra ``{"in_flight": N}``, else 5.
    :param business_unit_id: the business unit (brand) the calls work in, sent as ``businessUnitId`` on every
        call that takes one: subscription definitions, v4 status reads and unsubscribe-alls, and the emails
        the hook creates or updates. HubSpot asks accounts with the Business Units add-on to send it; 0 is the
        default unit every portal has.

    .. seealso:: https://developers.hubspot.com/docs/api/overview
    """

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    #: The provider registers this type with its form (``reengagement.provider``); connections of type
    #: ``http`` made before it keep working: the hook reads only host, port, password and extras.
    conn_type = "hubspot"
    hook_name = "HubSpot"

    def __init__(
        self,
        hubspot_conn_id: str = default_conn_name,
        *,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_attempts: int = 6,
        caller: str | None = None,
        in_flight: int | None = None,
        business_unit_id: int = 0,
    ) -> None:
        super().__init__()
        if in_flight is not None and in_flight < 1:
            raise ValueError(f"in_flight must be at least 1, not {in_flight}")
        self.hubspot_conn_id = hubspot_conn_id
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.caller = caller
        self._in_flight = in_flight
        self.business_unit_id = int(business_unit_id)

    @property
    def user_agent(self) -> str:
        return f"{USER_AGENT} ({self.caller})" if self.caller else USER_AGENT

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {
                "host": "API host",
                "schema": "Scheme",
                "password": "Service Key (or legacy private app token)",
            },
            "placeholders": {
                "host": "api.hubapi.com",
                "schema": "https",
                "port": "443",
                "extra": json.dumps({"api_version": DEFAULT_API_VERSION, "in_flight": DEFAULT_IN_FLIGHT}),
            },
        }

    # -- connection --------------------------------------------------------------------------------
    @cached_property
    def connection(self) -> Connection:
        return self.get_connection(self.hubspot_conn_id)

    @cached_property
    def base_url(self) -> str:
        """``https://api.hubapi.com`` unless the connection names another host (e.g. a sandbox)."""
        conn = self.connection
        host = (conn.host or "").strip().rstrip("/")
        if not host:
            return DEFAULT_BASE_URL
        if "://" in host:
            parts = urlsplit(host)
            scheme, netloc = parts.scheme, parts.netloc
        else:
            scheme, netloc = (conn.schema or "https"), host
        if conn.port and ":" not in netloc:
            netloc = f"{netloc}:{conn.port}"
        return f"{scheme}://{netloc}"

    @cached_property
    def in_flight(self) -> int:
        """Batch calls at once: the hook's argument, else the connection's extra ``in_flight``, else 5."""
        if self._in_flight is not None:
            return self._in_flight
        value = self._extra("in_flight", DEFAULT_IN_FLIGHT)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"Connection {self.hubspot_conn_id!r}: extra 'in_flight' must be a whole number of at "
                f"least 1, not {value!r}"
            )
        return value

    @cached_property
    def api_version(self) -> str:
        """The HubSpot API version every call goes to: the connection's extra ``api_version``, else the default.

        A date-based version (``2026-09``) or ``legacy`` (today's v1-v4 paths); anything else is refused
        before any call, naming the connection.
        """
        try:
            return check_version(self._extra("api_version"))
        except ValueError as err:
            raise ValueError(f"Connection {self.hubspot_conn_id!r}: extra {err}") from None

    def _extra(self, name: str, default: Any = None) -> Any:
        """An extra by its name, or as the connection form stores it (``extra__hubspot__<name>``).

        Only an absent (or null) extra takes the default: an empty or wrong value is refused by the caller.
        """
        extras = self.connection.extra_dejson
        for key in (name, f"extra__{self.conn_type}__{name}"):
            if extras.get(key) is not None:
                return extras[key]
        return default

    @cached_property
    def _token(self) -> str:
        token = self.connection.password
        if not token:
            raise HubSpotAuthError(
                f"Connection {self.hubspot_conn_id!r} has no password: set it to a HubSpot Service Key "
                "(Development > Keys > Service keys) or a legacy private app token."
            )
        return token

    @cached_property
    def transport(self) -> Transport:
        """Every request's limiter and retries; the limiter is the portal's, shared by every worker through Redis
        when there is one (:mod:`reengagement.shared_limit`)."""
        fingerprint = hashlib.sha256(self._token.encode()).hexdigest()[:16]
        limiter = limiter_for(f"{self.base_url}|{fingerprint}", time_zone=self._portal_time_zone)
        return Transport(limiter, max_attempts=self.max_attempts)

    def _portal_time_zone(self) -> str | None:
        """The portal's time zone, for the daily budget's midnight: asked of the shared limiter once a day per
        portal, from inside a request (the look-up's own request is admitted without the daily count)."""
        zone = self.portal.get("timeZone")
        return str(zone) if zone else None

    @cached_property
    def _rest(self) -> GuardedRest:
        from hubspot.crm.lists import Configuration, rest

        configuration = Configuration(host=self.base_url)
        configuration.retries = False  # retries are the transport's job, with HubSpot's rules
        return GuardedRest(
            rest.RESTClientObject(configuration),
            self.transport,
            self.timeout,
            user_agent=self.user_agent,
            route=partial(versioned_path, version=self.api_version),
        )

    @cached_property
    def client(self) -> hubspot.Client:
        """The SDK client, built on first use: creating the hook does no I/O."""
        import hubspot

        return hubspot.Client.create(
            access_token=self._token,
            host=self.base_url,
            base_url=self.base_url,
            retry=False,
            api_factory=self._api_factory,
        )

    def _api_factory(self, package: Any, api_name: str, config: dict[str, Any]) -> Any:
        configuration = package.Configuration()
        for key, value in config.items():
            if key == "retry":
                configuration.retries = value
            else:
                setattr(configuration, key, value)
        api_client = package.ApiClient(configuration=configuration)
        api_client.rest_client = self._rest
        return getattr(package, api_name)(api_client=api_client)

    # -- raw requests for what the SDK lacks -------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
    ) -> Any:
        """One HubSpot call by legacy path (e.g. v4 communication preferences), JSON in and out.

        The path is sent as the connection's API version names it (see :attr:`api_version`).
        """
        return self.request_with_headers(method, path, params=params, json_body=json_body)[0]

    def request_with_headers(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        json_body: Any = None,
    ) -> tuple[Any, dict[str, str]]:
        """:meth:`request`, and the answer's headers (e.g. ``X-HubSpot-RateLimit-*``, the portal's limits)."""
        url = self.base_url + path
        query = [(k, v) for k, v in (params.items() if isinstance(params, dict) else params or []) if v is not None]
        if query:
            url = f"{url}?{urlencode([(k, _param(v)) for k, v in query])}"
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        response = self._rest.request(method.upper(), url, headers=headers, body=json_body)
        data = response.data
        raw = getattr(response, "urllib3_response", response)
        return (json.loads(data) if data else None), dict(getattr(raw, "headers", None) or {})

    def access_token_info(self) -> dict[str, Any]:
        """The private app token's portal, app and granted scopes (HubSpot's token introspection; reads only).

        A legacy endpoint with no date-based equivalent; HubSpot does not introspect Service Keys this way.

        .. seealso:: https://developers.hubspot.com/docs/api/private-apps
        """
        info: dict[str, Any] = self.request(
            "POST", "/oauth/v2/private-apps/get/access-token-info", json_body={"tokenKey": self._token}
        )
        return info

    def open_download(self, url: str) -> Any:
        """A streaming, file-like response for a download URL HubSpot handed out (an export's CSV).

        The URL is pre-signed, so it gets no token and does not count against the API limit; it
        uses the same connection pool as every other request.
        """
        import urllib3

        response = self._rest.inner.pool_manager.request(
            "GET",
            url,
            preload_content=False,
            decode_content=True,
            retries=urllib3.Retry(total=5, backoff_factor=1, status_forcelist=(500, 502, 503, 504)),
            timeout=urllib3.Timeout(connect=self.timeout[0], read=self.timeout[1]),
        )
        if response.status in (403, 410):
            response.release_conn()
            raise HubSpotDownloadExpired(
                f"HubSpot's download URL was refused with HTTP {response.status}: it has "
                "expired (they last five minutes)",
                status=response.status,
            )
        if response.status != 200:
            raise HubSpotError(f"Downloading HubSpot's file failed with HTTP {response.status}")
        return response

    def start_export(self, request: dict[str, Any]) -> str:
        """Start a CRM export; its task id.

        HubSpot lets a portal start 30 exports in a rolling 24 hours and does not document its answer to one
        more, so any refusal other than the ordinary rate limit (a 429 without a rolling policy, or a 4xx that
        speaks of an export limit) is a :class:`HubSpotExportLimitError`. The start is tried once per
        rate-limit pause: it is not idempotent, and a refused start is never applied.
        """
        once = self._rest.with_transport(Transport(self.transport.limiter, max_attempts=1))
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = once.request("POST", self.base_url + EXPORTS_PATH, headers=headers, body=request)
            except HubSpotRateLimited as err:
                if err.body.get("policyName") not in _ROLLING_POLICIES:
                    raise _export_refused(err) from err
                if attempt == self.max_attempts:
                    raise
                self.transport.limiter.pause(self.transport.limiter.interval / 2)
            except (HubSpotValidationError, HubSpotForbiddenError) as err:
                if _EXPORT_LIMIT.search(str(err.body.get("message") or "")):
                    raise _export_refused(err) from err
                raise
            except HubSpotTransientError as err:
                if not getattr(err, "not_sent", False) or attempt == self.max_attempts:
                    raise
            else:
                return str(json.loads(response.data)["id"])
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    def export_status(self, task_id: str) -> dict[str, Any]:
        """An export task's status; when COMPLETE, ``result`` is a new download URL (each lasts five minutes)."""
        status: dict[str, Any] = self.request("GET", f"{EXPORTS_PATH}/tasks/{quote(str(task_id), safe='')}/status")
        return status

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call that says what is wrong: token, scopes or the host."""
        rest = self._rest.with_transport(Transport(self.transport.limiter, max_attempts=1))
        try:
            response = rest.request(
                "GET",
                f"{self.base_url}/account-info/v3/details",
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
            )
        except HubSpotError as err:
            return False, str(err)
        details = json.loads(response.data)
        return True, f"Connected to HubSpot portal {details.get('portalId')} at {self.base_url}"

    # -- paging ----------------------------------------------------------------------------------------
    def iter_list_memberships(self, list_id: str, *, page_size: int = MEMBERSHIPS_PAGE) -> Iterator[str]:
        """Record ids of a list, page by page (memory stays flat for any list size)."""
        api = self.client.crm.lists.memberships_api
        after: str | None = None
        while True:
            page = api.get_page(list_id, after=after, limit=page_size)
            for member in page.results or []:
                yield str(member.record_id)
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return

    def iter_email_events(
        self,
        campaign_id: str | int,
        event_type: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        exclude_filtered: bool = True,
        page_size: int = EVENTS_PAGE,
    ) -> Iterator[dict[str, Any]]:
        """Legacy email events of one campaign and type, newest first, 1000 per call.

        The one way the project reads per-recipient email events (who was sent, who clicked, who
        unsubscribed). It stays on ``/email/public/v1/events`` whatever the connection's API version: HubSpot
        has no date-based equivalent (its date-based Events API has no marketing email events, and email
        statistics are aggregates), so the path is in :data:`~reengagement.api_versions.LEGACY_ONLY` with
        HubSpot's end-of-support date, which preflight logs.
        """
        offset: str | None = None
        while True:
            page = self.request(
                "GET",
                "/email/public/v1/events",
                params={
                    "campaignId": campaign_id,
                    "eventType": event_type,
                    "startTimestamp": start_ms,
                    "endTimestamp": end_ms,
                    "excludeFilteredEvents": exclude_filtered,
                    "limit": page_size,
                    "offset": offset,
                },
            )
            yield from page.get("events", [])
            offset = page.get("offset")
            if not page.get("hasMore") or not offset:
                return

    # -- batches ---------------------------------------------------------------------------------------
    def contact_ids_by_email(self, emails: Iterable[str]) -> Iterator[tuple[str, str]]:
        """``(email, contact id)`` for the emails HubSpot knows, 100 per call; unknown ones are skipped.

        HubSpot names the unknown ones in the answer's ``errors``: in a 207 on v3, inside a 200 on date-based
        versions. The body is read the same way for both; an error other than "not found" fails the call
        rather than passing a contact off as unknown.
        """
        from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId

        api = self.client.crm.contacts.batch_api

        def read(chunk: list[str]) -> list[tuple[str, str]]:
            request = BatchReadInputSimplePublicObjectId(
                id_property="email",
                properties=["email"],
                properties_with_history=[],
                inputs=[SimplePublicObjectId(id=e) for e in chunk],
            )
            answer = json.loads(api.read(batch_read_input_simple_public_object_id=request, _preload_content=False).data)
            _raise_unexpected_errors(answer, "reading contacts by email")
            return [
                (email.lower(), str(contact["id"]))
                for contact in answer.get("results") or []
                if (email := (contact.get("properties") or {}).get("email"))
            ]

        for found in in_order(read, chunked(_unique_addresses(emails), BATCH_SIZE), in_flight=self.in_flight):
            yield from found

    def add_to_list(
        self, list_id: str, record_ids: Iterable[str], *, when_ready: Callable[[], object] | None = None
    ) -> int:
        """Add records to a MANUAL list, 100 per call; how many were not members yet (adding is idempotent).

        ``when_ready`` (if given) is called, in the add's own thread, before each add: it blocks until the
        list may take members and raises if it never will. Adds then queue up while ``record_ids`` is still
        being read, instead of the reading waiting for the list.
        """
        api = self.client.crm.lists.memberships_api

        def add(chunk: list[str]) -> int:
            if when_ready is not None:
                when_ready()
            return len(api.add(list_id, chunk).records_ids_added or [])

        return sum(in_order(add, chunked(record_ids, BATCH_SIZE), in_flight=self.in_flight))

    @cached_property
    def portal(self) -> dict[str, Any]:
        """``portalId``, ``uiDomain`` and ``timeZone`` of the portal (one call per hook)."""
        details = self.request("GET", "/account-info/v3/details")
        return {
            "portalId": details["portalId"],
            "uiDomain": details.get("uiDomain", "app.hubspot.com"),
            "timeZone": details.get("timeZone"),
        }

    def property_types(self, names: Iterable[str]) -> dict[str, str | None]:
        """HubSpot's ``type`` of each contact property (``None`` if the portal has no such property).

        List filters must fit the type: HubSpot refuses, say, a BOOL operation on an enumeration.
        """
        types: dict[str, str | None] = {}
        for name in dict.fromkeys(names):
            try:
                definition = self.request("GET", f"/crm/v3/properties/contacts/{quote(name, safe='')}")
            except HubSpotNotFound:
                types[name] = None
            else:
                types[name] = str(definition.get("type") or "") or None
        return types

    def property_options(self, name: str) -> list[str]:
        """The internal values an enumeration contact property allows (empty for other types)."""
        definition = self.request("GET", f"/crm/v3/properties/contacts/{quote(name, safe='')}")
        return [str(option["value"]) for option in definition.get("options") or [] if "value" in option]

    # -- lists ---------------------------------------------------------------------------------------------
    def get_list_by_name(self, name: str) -> dict[str, Any] | None:
        """The list called ``name`` with its filters, or ``None``.

        Every look-up of a list by name goes through HubSpot's get-by-name endpoint, never list search: it
        names one list exactly on every API version. On date-based versions list search requires ``listIds``
        and ``processingTypes``, and HubSpot does not document what an empty ``listIds`` means; read strictly
        it matches nothing, so a search-based look-up would call an existing list missing and the caller
        would create a duplicate.
        """
        try:
            found = self.client.crm.lists.lists_api.get_by_name(
                name, "0-1", include_filters=True, _preload_content=False
            )
        except HubSpotNotFound:
            return None
        found_list: dict[str, Any] = json.loads(found.data)["list"]
        return found_list

    def get_list(self, list_id: str, *, include_filters: bool | None = None) -> dict[str, Any]:
        """A list as HubSpot answers it (``listId``, ``processingStatus``, ``size``, ...), by id.

        Read as JSON, as :meth:`get_list_by_name` reads it, so every caller sees one shape. ``include_filters``
        is sent only when given (``None`` leaves HubSpot's default).
        """
        found = self.client.crm.lists.lists_api.get_by_id(
            str(list_id), include_filters=include_filters, _preload_content=False
        )
        return json.loads(found.data)["list"]  # type: ignore[no-any-return]

    def create_list(
        self, name: str, processing_type: str, filter_branch: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create a contact list (``filter_branch`` for DYNAMIC and SNAPSHOT lists); the new list.

        One call, not idempotent: callers look the name up (:meth:`get_list_by_name`) before creating and
        after a failed create, so a campaign's deterministic name never gets two lists.
        """
        from hubspot.crm.lists import ListCreateRequest

        request = ListCreateRequest(
            name=name, object_type_id="0-1", processing_type=processing_type, filter_branch=filter_branch
        )
        response = self.client.crm.lists.lists_api.create(request, _preload_content=False)
        return json.loads(response.data)["list"]  # type: ignore[no-any-return]

    # -- marketing emails --------------------------------------------------------------------------------
    def get_email(self, email_id: str) -> dict[str, Any]:
        """A marketing email as HubSpot shows it now: its state decides whether it was sent, not a task's try."""
        api = self.client.marketing.emails.marketing_emails_api
        return json.loads(api.get_by_id(str(email_id), _preload_content=False).data)  # type: ignore[no-any-return]

    def email_counters(self, email_id: str) -> dict[str, Any]:
        """The email's post-send statistics (HubSpot's ``stats.counters``); empty before anything was counted."""
        api = self.client.marketing.emails.marketing_emails_api
        email = json.loads(api.get_by_id(str(email_id), include_stats=True, _preload_content=False).data)
        return ((email.get("stats") or {}).get("counters")) or {}

    def find_email_by_name(self, name: str) -> dict[str, Any] | None:
        """The (non-archived) marketing email called ``name``, newest first, or ``None``.

        The campaign names its emails deterministically, so a rerun adopts the email a previous try made.
        """
        api = self.client.marketing.emails.marketing_emails_api
        after = None
        while True:
            page = json.loads(
                api.get_page(limit=100, after=after, archived=False, sort=["-createdAt"], _preload_content=False).data
            )
            for email in page.get("results", []):
                if email.get("name") == name:
                    return email  # type: ignore[no-any-return]
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return None

    def create_email(self, request: dict[str, Any]) -> dict[str, Any]:
        """Create a marketing email in the hook's business unit (one call: not idempotent, so the caller looks
        it up by name after a failure)."""
        api = self.client.marketing.emails.marketing_emails_api
        body = {**request, "businessUnitId": self.business_unit_id}
        return json.loads(api.create(body, _preload_content=False).data)  # type: ignore[no-any-return]

    def clone_email(self, email_id: str, name: str) -> dict[str, Any]:
        """A copy of a designed email under ``name`` (one call, not idempotent, like :meth:`create_email`)."""
        from hubspot.marketing.emails import ContentCloneRequestVNext

        api = self.client.marketing.emails.marketing_emails_api
        clone = ContentCloneRequestVNext(id=str(email_id), clone_name=name)
        return json.loads(api.clone(clone, _preload_content=False).data)  # type: ignore[no-any-return]

    def update_email(self, email_id: str, update: dict[str, Any]) -> dict[str, Any]:
        """Patch a draft email's settings or content (and keep it in the hook's business unit: a cloned template
        may come from another); the email as HubSpot has it after the patch."""
        api = self.client.marketing.emails.marketing_emails_api
        body = {**update, "businessUnitId": self.business_unit_id}
        return json.loads(api.update(str(email_id), body, _preload_content=False).data)  # type: ignore[no-any-return]

    def publish_email(self, email_id: str) -> None:
        """Publish (send) an email. Not idempotent: callers read :meth:`get_email` before and after it."""
        self.client.marketing.emails.marketing_emails_api.publish_or_send(str(email_id))

    # -- subscriptions -----------------------------------------------------------------------------------
    def subscription_definitions(self) -> dict[str, Any]:
        """The subscription types of the hook's business unit (HubSpot's ``results``).

        Read from v4 (or its date-based version), the one that takes ``businessUnitId``; v3 lists every unit's.
        """
        return self.request(  # type: ignore[no-any-return]
            "GET", DEFINITIONS_PATH, params={"businessUnitId": self.business_unit_id}
        )

    def unsubscribe_all(self, emails: list[str]) -> dict[str, Any]:
        """Opt up to 100 addresses out of all email (verbose: one result per address); HubSpot's answer.

        Its ``errors`` name the addresses HubSpot failed; the caller records them rather than raising.
        """
        params = {"channel": "EMAIL", "businessUnitId": self.business_unit_id, "verbose": True}
        return self.request(  # type: ignore[no-any-return]
            "POST", UNSUBSCRIBE_ALL_PATH, params=params, json_body={"inputs": emails}
        )

    def write_statuses(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """Set up to 100 subscription statuses (each input names its address, type, state and legal basis).

        No ``businessUnitId``: HubSpot's batch write takes none, as each subscription type belongs to one unit.
        """
        return self.request("POST", BATCH_WRITE_PATH, json_body={"inputs": inputs})  # type: ignore[no-any-return]

    # -- forms -------------------------------------------------------------------------------------------
    def iter_forms(self, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """The portal's forms, page by page: preflight reads their consent options."""
        api = self.client.marketing.forms.forms_api
        after = None
        while True:
            page = json.loads(api.get_page(after=after, limit=page_size, _preload_content=False).data)
            yield from page.get("results", [])
            after = ((page.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    # -- contacts and account ----------------------------------------------------------------------------
    def count_contacts(self) -> int:
        """How many contacts the portal has: one search for a single contact, whose ``total`` counts them all."""
        from hubspot.crm.contacts import PublicObjectSearchRequest

        search = PublicObjectSearchRequest(filter_groups=[], sorts=[], properties=["email"], limit=1, after="0")
        return int(self.client.crm.contacts.search_api.do_search(search).total or 0)

    def daily_api_usage(self) -> list[dict[str, Any]]:
        """Today's API usage of the private app (``usageLimit``, ``currentUsage``, ...); empty if HubSpot has none."""
        return list(self.request("GET", DAILY_USAGE_PATH).get("results") or [])

    # -- probes ------------------------------------------------------------------------------------------
    def probe(self, method: str, path: str, *, json_body: Any = None) -> Any:
        """One raw call whose answer, or error, tells whether the portal and token may do something.

        The call is chosen to change nothing (e.g. publishing an email that does not exist); HubSpot's
        errors propagate unchanged (:mod:`reengagement.errors`), as they are the verdict.
        """
        return self.request(method, path, json_body=json_body)


def _raise_unexpected_errors(answer: dict[str, Any], what: str) -> None:
    """Raise for a batch answer's errors other than unknown inputs (which the callers skip)."""
    unexpected = [e for e in batch_errors(answer) if e.get("category") != "OBJECT_NOT_FOUND"]
    if unexpected:
        first = unexpected[0]
        raise HubSpotError(
            f"HubSpot failed {len(unexpected)} part(s) of a batch {what}: "
            f"{first.get('category')}: {first.get('message')}",
            body=answer,
        )


def _export_refused(err: HubSpotError) -> HubSpotExportLimitError:
    return HubSpotExportLimitError(
        f"HubSpot refused to start the export: {err.body.get('message') or err}",
        status=err.status,
        correlation_id=err.correlation_id,
        body=err.body,
    )


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
