"""Rule validation refuses values of the wrong type (a 400 naming the field), not silently the default."""
from __future__ import annotations

import pytest

from hub.supervisor import quality_rules
from hub.supervisor.sla_rules import RuleError, parse_rule


@pytest.mark.parametrize("extra,field", [
    ({"escalation": []}, "escalation"), ({"escalation": 0}, "escalation"), ({"escalation": False}, "escalation"),
    ({"account_id": 0}, "account_id"), ({"group": []}, "group"), ({"name": False}, "name"),
    ({"escalation": "notify", "notify_user_id": 2 ** 70}, "notify_user_id"),
])
def test_sla_rule_wrong_types_are_refused(extra, field):  # noqa: ANN001
    with pytest.raises(RuleError) as err:
        parse_rule({"kind": "first_reply", "seconds": 60, **extra})
    assert err.value.field == field


def test_sla_rule_missing_or_null_optional_fields_take_their_defaults():
    rule = parse_rule({"kind": "first_reply", "seconds": 60, "escalation": None, "name": None, "group": None})
    assert rule.escalation == "none" and rule.name == "首次响应" and rule.group == ""


def test_quality_rule_blank_name_takes_the_default():
    rule = quality_rules.parse_rule({"kind": "anxiety_words", "name": "   ", "params": {"words": ["投诉"]}})
    assert rule.name == "客户情绪预警"
