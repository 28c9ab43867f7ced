"""The one-week wait of step 6, measured from the round's real send time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor

from .campaign import human_duration, parse_duration

if TYPE_CHECKING:
    from airflow.sdk import Context


class SendWindowSensor(TimeDeltaSensor):
    """Wait ``delta`` after the round's email was sent, not after the run started.

    The stock sensor counts from the run's data interval, which would make round 2 and 3 (and any
    send that happened late) wait too little. Here the base time is the ``sent_at`` HubSpot recorded,
    so a cleared or retried sensor waits only what is left. Deferrable: the wait runs in the
    triggerer and holds no worker slot.

    :param sent_at: ISO 8601 send time of the round's email (templated, from the send task's XCom).
    :param delta: the response window, a ``timedelta`` or an ISO 8601 duration such as ``P7D``.
    """

    template_fields: Sequence[str] = ("delta", "sent_at")

    def __init__(self, *, sent_at: str, delta: dt.timedelta | str, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(delta=delta, deferrable=deferrable, **kwargs)  # type: ignore[arg-type]
        self.sent_at = sent_at

    def _resolve_delta(self) -> dt.timedelta:
        if isinstance(self.delta, str):
            return parse_duration(self.delta)
        return super()._resolve_delta()

    def _derive_base_time(self, context: Context) -> dt.datetime:
        if not self.sent_at:
            raise ValueError(f"{self.task_id}: no send time to measure the wait from (sent_at is empty)")
        sent = dt.datetime.fromisoformat(str(self.sent_at).replace("Z", "+00:00"))
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=dt.timezone.utc)
        self.log.info("Waiting %s after the send at %s, until %s.", human_duration(self._resolve_delta()), sent,
                      sent + self._resolve_delta())
        return sent
