"""Routing customers to human agents: rules (which group/priority/advisor) and dispatch (which agent, when).

Both halves are pure: no I/O, no clock reads, no randomness.
"""
from hub.routing.dispatch import AgentState, Assignment, DispatchError, Dispatcher, QueuedSession
from hub.routing.rules import (Actions, Condition, Decision, RoutingInput, Rule, RuleError, decide,
                               default_priority, parse_rule, rule_to_json)

__all__ = [
    "Actions", "AgentState", "Assignment", "Condition", "Decision", "DispatchError", "Dispatcher",
    "QueuedSession", "RoutingInput", "Rule", "RuleError", "decide", "default_priority", "parse_rule",
    "rule_to_json",
]
