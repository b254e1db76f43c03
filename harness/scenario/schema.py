"""The scenario JSON Schema, generated from the models (never written by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.scenario.model import Scenario

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "scenarios" / "scenario.schema.json"
SCHEMA_ID = "https://flexlab.dev/schemas/scenario.schema.json"


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (draft 2020-12), for editors and other tools."""
    schema = Scenario.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "flexlab scenario"
    return schema


def schema_text() -> str:
    """The schema as committed: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(scenario_schema(), indent=2, sort_keys=True) + "\n"
