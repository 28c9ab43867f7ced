"""The benchmark still runs end to end (at 2,000 contacts), so ``make bench`` does not rot between runs."""

from __future__ import annotations

import re

from tests.benchmarks import sandbox_bench


def test_benchmark_reports_every_metric_and_matches_the_ground_truth(tmp_path, capsys):
    out = tmp_path / "results.md"

    assert sandbox_bench.main(["--sizes", "2000", "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    written = out.read_text()
    assert written.startswith("# Sandbox benchmark results") and "## Sandbox benchmark, " in written
    assert "CPUs (nproc)" in written and "GiB RAM" in written
    rows = [line for line in written.splitlines() if line.startswith("| ")]
    for metric in sandbox_bench.METRICS:
        row = next(line for line in rows if line.startswith(f"| {metric.label} | {metric.unit} |"))
        value = row.rstrip(" |").rsplit(" | ", 1)[1]
        assert value and value != "nan", metric.key
        if metric.unit != "yes/no":
            assert re.fullmatch(r"[\d,]+(\.\d+)?", value), (metric.key, value)
    truth = next(line for line in written.splitlines() if "ground truth" in line)
    assert truth.endswith("| yes |")
    assert re.search(r"^- (PASS|FAIL): memberships page p95 < 20 ms at every size", written, re.M)
    assert re.search(r"^- (PASS|FAIL): batch of 100 p95 < 50 ms at every size", written, re.M)
    assert written.split("\n", 3)[3].strip() in printed  # the same report went to stdout


def test_sizes_must_be_numbers_of_at_least_a_hundred_contacts(capsys):
    for bad in ("abc", "50", ""):
        try:
            sandbox_bench.main(["--sizes", bad, "--out", "/dev/null"])
        except SystemExit as exit_:
            assert exit_.code == 2
        else:
            raise AssertionError(f"--sizes {bad!r} was accepted")
    assert "sizes" in capsys.readouterr().err
