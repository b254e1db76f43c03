"""Errors of the rule engine."""


class RulesError(Exception):
    """The rules cannot run as asked (unknown rule id, contradictory context)."""
