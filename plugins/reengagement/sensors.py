"""The one-week wait of step 6, measured from the round's real send time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import timezone

from .campaign import human_duration, parse_duration

if TYPE_CHECKING:
    from airflow.sdk import Context


class SendWindowSensor(TimeDeltaSensor):
    """Wait ``delta`` after the round's email was sent, not after the run started.

    The stock ``TimeDeltaSensor`` counts from the run's data interval, which would make rounds 2 and 3
    (and any send that happened late) wait too little. Here the base time is the ``sent_at`` HubSpot
    recorded, so a cleared or retried sensor waits only what is left. Deferrable, as the stock sensor is:
    its own ``execute`` hands the wait to a ``DateTimeTrigger`` in the triggerer, so it holds no worker
    slot; without ``deferrable`` it pokes. Only the public ``execute`` and ``poke`` are overridden.

    :param sent_at: ISO 8601 send time of the round's email (templated, from the send task's XCom).
    :param delta: the response window, a ``timedelta`` or an ISO 8601 duration such as ``P7D`` (templated).
    """

    template_fields: Sequence[str] = ("delta", "sent_at")

    def __init__(self, *, sent_at: str, delta: dt.timedelta | str, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(delta=delta, deferrable=deferrable, **kwargs)  # type: ignore[arg-type]
        self.sent_at = sent_at

    def window(self) -> tuple[dt.datetime, dt.timedelta]:
        """The send time and the response window, both read from the rendered fields."""
        if not self.sent_at:
            raise ValueError(f"{self.task_id}: no send time to measure the wait from (sent_at is empty)")
        sent = dt.datetime.fromisoformat(str(self.sent_at).replace("Z", "+00:00"))
        delta = self.delta if isinstance(self.delta, dt.timedelta) else parse_duration(str(self.delta))
        return (sent if sent.tzinfo else sent.replace(tzinfo=dt.UTC)), delta

    def poke(self, context: Context) -> bool:
        sent, delta = self.window()
        return timezone.utcnow() >= sent + delta

    def execute(self, context: Context) -> Any:
        sent, delta = self.window()
        until = sent + delta
        self.log.info("Waiting %s after the send at %s, until %s.", human_duration(delta), sent, until)
        if timezone.utcnow() >= until:
            return True
        if not self.deferrable:
            return super().execute(context)
        # No deferral timeout: the trigger fires at ``until`` whatever happens, and a sensor's default timeout
        # (7 days) would fail a longer window such as P14D before it ends.
        self.defer(trigger=DateTimeTrigger(moment=until), method_name="execute_complete")
        return None  # not reached: defer raises

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """The trigger fired: the window is over."""
        return None
