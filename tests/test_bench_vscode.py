"""benchmarks/hub/vscode.py: the pure parts (Resource Timing totals, the report). The browser part
runs against a hub (benchmarks/hub/README.md)."""

import pathlib

from scriptload import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks/hub/vscode.py"


def _load():
    return load_script(SCRIPT, "bench_vscode")


vs = _load()

RESOURCES = [
    {"name": "http://h/user/a/vscode/", "transfer": 1200, "encoded": 900, "decoded": 900},
    {
        "name": "http://h/x/out/vs/workbench/workbench.web.main.js",
        "transfer": 4908663,
        "encoded": 4908363,
        "decoded": 19339709,
    },
    {"name": "http://h/x/templates.png", "transfer": 0, "encoded": 46748, "decoded": 46748},  # cached
    {"name": "http://h/x/nls.messages.js", "transfer": None, "encoded": None, "decoded": None},
]


def test_summarize_resources_counts_compressed_and_cached():
    s = vs.summarize_resources(RESOURCES)
    assert s["requests"] == 4
    assert s["transfer"] == 1200 + 4908663
    assert s["decoded"] == 900 + 19339709 + 46748
    assert s["compressed_decoded"] == 19339709  # only what came smaller than it is
    assert s["largest"][0] == ("workbench.web.main.js", 4908363, 19339709)


def test_report_has_a_row_per_load_and_the_per_kind_summary():
    ok = vs.Load(
        round=1,
        kind="first",
        ok=True,
        ttfb_s=1.9,
        dcl_s=4.0,
        workbench_s=5.0,
        ready_s=6.5,
        requests=13,
        transfer_bytes=5 * 1048576,
        decoded_bytes=21 * 1048576,
        compressed_bytes_decoded=20 * 1048576,
        ws_payload_received=3 * 1048576,
        ws_deflate="yes",
        largest=[("workbench.js", 4908363, 19339709)],
        content_encodings={"br": 12},
    )
    bad = vs.Load(round=1, kind="reload", error="TimeoutError: 120 s")
    lines = vs.format_report([ok, bad])
    row = next(ln for ln in lines if ln.strip().startswith("1 first"))
    assert "6.50" in row and "yes" in row and " 95%" in row
    assert any("FAILED: TimeoutError" in ln for ln in lines)
    assert any(ln.strip().startswith("first") and "ready p50 6.50 s" in ln for ln in lines)
    assert any("workbench.js" in ln for ln in lines)


def test_pct():
    assert vs.pct([1.0, 2.0, 3.0], 50) == 2.0
    assert vs.pct([], 50) != vs.pct([], 50)  # nan
