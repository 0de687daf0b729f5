"""``info --json`` against the shipped JSON Schema (src/devicelab/hardware/schema.json).

jsonschema is not a dependency, so a small checker of the keywords the schema uses (type, properties,
required, additionalProperties, items, enum, const, $ref) does the validation; it is itself tested on bad input.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import devicelab.hardware
from devicelab.hardware import SCHEMA_VERSION, collect
from devicelab.hardware.report import to_dict
from hardware_fakes import H100, MI300X, FakeNvml, TorchBuild, probes_for

SCHEMA = json.loads((Path(devicelab.hardware.__file__).parent / "schema.json").read_text())
TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def errors(value, schema, path="$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (the subset of JSON Schema that schema.json uses)."""
    if "$ref" in schema:
        return errors(value, SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]], path)
    found = []
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: {value!r} != {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in {schema['enum']}")
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        is_bool = isinstance(value, bool)
        if not any(isinstance(value, TYPES[n]) and (n == "boolean" or not is_bool) for n in names):
            return [*found, f"{path}: {type(value).__name__} is not {names}"]
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        found += [f"{path}: missing {key}" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in properties:
                found += errors(item, properties[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{path}: unexpected {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += errors(item, schema["additionalProperties"], f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += errors(item, schema["items"], f"{path}[{i}]")
    return found


def test_checker_catches_bad_documents():
    good = to_dict(collect())
    assert errors(good, SCHEMA) == []
    bad = json.loads(json.dumps(good))
    bad["cpu"]["physical_cores"] = "two"
    bad["memory"]["extra"] = 1
    del bad["software"]["torch"]
    bad["schema_version"] = SCHEMA_VERSION + 1
    problems = errors(bad, SCHEMA)
    assert any("$.cpu.physical_cores" in p for p in problems)
    assert any("unexpected extra" in p for p in problems)
    assert any("missing torch" in p for p in problems)
    assert any("$.schema_version" in p for p in problems)


def test_real_cli_json_output_matches_schema(cli):
    result = cli("info", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == SCHEMA_VERSION == SCHEMA["properties"]["schema_version"]["const"]
    assert errors(document, SCHEMA) == []


@pytest.mark.parametrize(
    "probes",
    [
        lambda: probes_for(TorchBuild(devices=[H100.props]), FakeNvml([H100])),
        lambda: probes_for(TorchBuild(devices=[H100.props]), FakeNvml([H100], fail=True)),
        lambda: probes_for(TorchBuild(cuda=None, hip="6.4", devices=[MI300X], arch_list=("gfx942",))),
    ],
    ids=["h100", "nvml-raising", "rocm"],
)
def test_gpu_reports_match_schema(probes):
    document = json.loads(json.dumps(to_dict(collect(probes()))))
    assert document["gpus"]
    assert errors(document, SCHEMA) == []


@pytest.mark.slow
def test_measured_report_matches_schema():
    document = json.loads(json.dumps(to_dict(collect(measure=True, quick=True))))
    assert document["measurements"]
    assert errors(document, SCHEMA) == []


def test_schema_is_documented():
    docs = (Path(__file__).parents[1] / "docs" / "info.md").read_text()
    for name in SCHEMA["$defs"]:
        for field in SCHEMA["$defs"][name]["properties"]:
            assert f"`{field}`" in docs, f"docs/info.md does not document {name}.{field}"
