"""`annc variants` and `annc devices` from the command line."""

from __future__ import annotations

import json

import pytest

from annc.cli import main


def test_variants_json_lists_every_variant_with_the_contract_keys(capsys) -> None:
    assert main(["variants", "--report", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"variants"}
    rows = report["variants"]
    assert all(set(row) == {"kernel", "variant", "device", "backend", "origin"}
               for row in rows)
    assert {"kernel": "matmul", "variant": "strassen", "device": "cpu",
            "backend": "numpy", "origin": "built-in"} in rows


def test_variants_table_and_kernel_filter(capsys) -> None:
    assert main(["variants", "--kernels", "conv2d"]) == 0
    out = capsys.readouterr().out
    assert "im2col" in out and "strassen" not in out


def test_variants_check_passes_and_reports_counts(capsys) -> None:
    assert main(["variants", "--check", "--kernels", "transpose,dot", "--report", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["variants"]
    assert rows and all(row["check"]["failed"] == 0 and row["check"]["passed"] > 0
                        for row in rows)


def test_an_unknown_kernel_is_a_user_error(capsys) -> None:
    assert main(["variants", "--kernels", "matmull"]) == 1
    assert "unknown kernel matmull" in capsys.readouterr().err


@pytest.mark.parametrize("report", ["table", "json"])
def test_devices_shows_the_cpu_and_the_fingerprint(capsys, report: str) -> None:
    assert main(["devices", "--report", report]) == 0
    out = capsys.readouterr().out
    assert "cpu" in out
    if report == "json":
        data = json.loads(out)
        assert data["devices"][0]["name"] == "cpu"
        assert len(data["fingerprint"]["id"]) == 12
