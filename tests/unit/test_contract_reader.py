"""The recording reader never parses a line the sandbox is still writing."""

from __future__ import annotations

import json

from tests.support.contract import read_exchanges


def _line(path: str) -> str:
    return (
        json.dumps(
            {
                "endpoint": "x",
                "method": "GET",
                "path": path,
                "query": "",
                "request_content_type": "",
                "request_body": "",
                "status": 200,
                "response_content_type": "application/json",
                "response_body": "{}",
            }
        )
        + "\n"
    )


def test_a_half_written_last_line_is_left_for_the_next_read(tmp_path):
    record = tmp_path / "traffic.jsonl"
    first, second = _line("/a"), _line("/b")
    record.write_text(first + second[:40])

    exchanges, offset = read_exchanges(record)
    assert [e.path for e in exchanges] == ["/a"]
    assert offset == len(first.encode())

    with record.open("a") as fh:
        fh.write(second[40:])
    exchanges, offset = read_exchanges(record, offset)
    assert [e.path for e in exchanges] == ["/b"]
    assert offset == record.stat().st_size
