#!/usr/bin/env python3
"""Generate docs/variables.md from every role's meta/argument_specs.yml.

.venv/bin/python scripts/gen-vars-reference.py          # writes docs/variables.md
.venv/bin/python scripts/gen-vars-reference.py --check  # exit 1 when the file is stale
"""

import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _text(value):
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return " ".join(str(value or "").split()).replace("|", "\\|")


def _default(spec):
    if "default" not in spec:
        return "*required*" if spec.get("required") else ""
    dumped = (
        yaml.safe_dump(spec["default"], default_flow_style=True, width=10_000)
        .strip()
        .removesuffix("...")
        .strip()
    )
    return "`" + dumped.replace("|", "\\|") + "`"


def render():
    out = [
        "# Variables reference",
        "",
        "Generated from `roles/*/meta/argument_specs.yml` by `scripts/gen-vars-reference.py`; do not edit by hand.",
        "Set them in `group_vars/` (all hosts, `npu_servers`, `cache_proxy`) or `host_vars/`.",
        "",
    ]
    for spec_file in sorted(ROOT.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        entry = (yaml.safe_load(spec_file.read_text()) or {}).get("argument_specs", {}).get("main", {})
        out += [f"## {role}", "", _text(entry.get("short_description")), ""]
        out += ["| variable | type | default | description |", "|---|---|---|---|"]
        for name, spec in sorted((entry.get("options") or {}).items()):
            kind = spec.get("type", "str")
            if spec.get("choices"):
                kind += " (" + ", ".join(str(c) for c in spec["choices"]) + ")"
            out.append(f"| `{name}` | {kind} | {_default(spec)} | {_text(spec.get('description'))} |")
        out.append("")
    return "\n".join(out)


def main():
    target = ROOT / "docs" / "variables.md"
    text = render()
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print("docs/variables.md is stale: run scripts/gen-vars-reference.py")
            return 1
        return 0
    target.write_text(text)
    print(f"wrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
