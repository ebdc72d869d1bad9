"""config/README.md documents every key the config schema accepts, and no key it refuses:
the user's reference for the config cannot drift from what the workflow validates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _leaves(props: dict, prefix: str = "") -> Iterator[str]:
    """Dotted names of a schema block's keys; a nested object contributes its own keys, a
    map of named entries (``designs``) its entries' keys as ``designs.{name}.key``."""
    for key, spec in props.items():
        spec = spec if isinstance(spec, dict) else {}
        entries = spec.get("additionalProperties")
        if "properties" in spec:
            yield from _leaves(spec["properties"], f"{prefix}{key}.")
        elif isinstance(entries, dict) and "properties" in entries:
            yield from _leaves(entries["properties"], f"{prefix}{key}.{{name}}.")
        else:
            yield prefix + key


def _schema_keys() -> dict[str, set[str]]:
    schemas = REPO / "workflow" / "schemas"
    schema = yaml.safe_load((schemas / "config.schema.yaml").read_text())
    blocks = {}
    for top, spec in schema["properties"].items():
        props = spec.get("properties") or (spec.get("additionalProperties") or {}).get(
            "properties", {}
        )
        blocks[top] = set(_leaves(props))
    # the simulation block has a schema of its own (validated when the block is present)
    simulation = yaml.safe_load((schemas / "simulation.schema.yaml").read_text())
    blocks["simulation"] = set(_leaves(simulation["properties"]))
    return blocks


def _documented() -> tuple[set[str], dict[str, set[str]]]:
    """The README's `## \\`block\\`` headings and the first-column keys of each block's table."""
    text = (REPO / "config" / "README.md").read_text()
    headings, rows, current = set(), {}, None
    for line in text.splitlines():
        head = re.match(r"^## `([^`]+)`", line)
        if head:
            current = head.group(1)
            headings.add(current)
            rows[current] = set()
            continue
        row = re.match(r"^\| `([^`]+)`", line)
        if row and current is not None:
            rows[current].add(row.group(1))
    return headings, rows


def test_every_schema_key_is_documented_under_its_block():
    headings, rows = _documented()
    for block, keys in _schema_keys().items():
        assert block in headings, f"config/README.md has no section for `{block}`"
        missing = keys - rows[block]
        assert not missing, f"config/README.md, `{block}`: undocumented keys {sorted(missing)}"


def test_no_documented_key_is_unknown_to_the_schema():
    _, rows = _documented()
    schema = _schema_keys()
    for block, keys in rows.items():
        known = schema.get(block, set())
        stale = keys - known
        assert not stale, f"config/README.md, `{block}`: keys the schema refuses {sorted(stale)}"
