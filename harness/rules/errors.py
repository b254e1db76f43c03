"""Errors of the rule engine."""

from harness.errors import FlexlabError


class RulesError(FlexlabError):
    """The rules cannot run as asked (unknown rule id, contradictory context)."""
