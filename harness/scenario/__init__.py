"""Scenario files: typed model, strict loader with file:line errors, JSON Schema."""

from harness.scenario.loader import ScenarioError, load_scenario, parse_scenario
from harness.scenario.model import Scenario

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_scenario"]
