"""The campaigns file parse benchmark's machinery, so ``make bench`` does not rot between runs.

A few parses only; the assertions are about what was built and reported, never about how long it took.
"""

from __future__ import annotations

from tests.benchmarks import campaigns_parse


def test_the_benchmark_parses_both_files_without_network_and_reports_the_target(tmp_path):
    out = tmp_path / "results.md"
    assert campaigns_parse.main(["--repetitions", "2", "--out", str(out)]) in (0, 1)
    text = out.read_text()
    assert "| 1 |" in text and "| 10 |" in text
    assert "socket connections attempted while parsing: 0" in text
    assert "parse time per campaign with 10 campaigns <= 1.2 x that of one" in text


def test_the_generated_campaigns_are_valid_and_distinct(tmp_path):
    from reengagement.campaigns_file import load_campaigns

    path = tmp_path / "campaigns.yaml"
    path.write_text(campaigns_parse.campaigns_yaml(10))
    declared = load_campaigns(path)
    assert declared.problems == []
    assert len({c.id for c in declared.campaigns}) == 10
    assert len({c.business_unit for c in declared.campaigns}) == 10
