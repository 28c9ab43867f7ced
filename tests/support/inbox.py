"""A local SMTP server that keeps what it receives: where the campaign's notifications land in tests."""

from __future__ import annotations

import email
import json
import socket
from email.message import Message
from typing import Any


class Inbox:
    """An aiosmtpd handler that keeps every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]

    def body(self, subject_part: str) -> str:
        (found,) = [m for m in self.messages if subject_part in str(m["Subject"])]
        parts = [p for p in found.walk() if p.get_content_type() == "text/html"]
        return "".join(p.get_payload(decode=True).decode() for p in parts)


class SmtpServer:
    """``aiosmtpd`` on a free loopback port, with its :class:`Inbox` and the Airflow connection that reaches it."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.inbox = Inbox()
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)

    def connection(self) -> str:
        """``smtp_default`` as Airflow's JSON connection format, for ``AIRFLOW_CONN_SMTP_DEFAULT``."""
        return json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": self.port,
                "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@example.com"},
            }
        )

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
