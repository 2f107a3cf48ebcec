"""Turns merged section results into prioritized recommendations, by rules.yaml.

The rules file is loaded and checked once at start-up: an unknown trigger,
priority or category, or a text that names a field the trigger does not
provide, fails start-up rather than a patient's request.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from novamind.common.v1 import common_pb2
from twin_orchestrator.triggers import TRIGGERS, Context, Match

_LOGGER = logging.getLogger(__name__)

RULES_PATH = Path(__file__).with_name("rules.yaml")


class RulesError(ValueError):
    """rules.yaml breaks its schema; the message names the rule and the field."""


@dataclass(frozen=True)
class Rule:
    rule_id: str
    trigger: str
    params: Mapping[str, Any]
    priority: common_pb2.Priority
    category: common_pb2.RecommendationCategory
    text: str
    rationale: str
    suppressed_by: tuple[str, ...]


@dataclass(frozen=True)
class RuleBook:
    version: str
    rules: tuple[Rule, ...]
    overall_risk: Mapping[str, Any]


def _enum(enum_type: Any, prefix: str, name: object, where: str) -> Any:
    try:
        return enum_type.Value(f"{prefix}{name}")
    except ValueError as exc:
        raise RulesError(f"{where}: unknown value {name!r}") from exc


def load_rules(path: Path = RULES_PATH) -> RuleBook:
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, dict) or "rules" not in raw:
        raise RulesError(f"{path.name}: must be a mapping with 'rules'")
    rules = []
    seen: set[str] = set()
    for index, entry in enumerate(raw["rules"]):
        where = f"rules[{index}]"
        rule_id = str(entry.get("id", ""))
        if not rule_id or rule_id in seen:
            raise RulesError(f"{where}.id: must be present and unique")
        seen.add(rule_id)
        trigger = str(entry.get("trigger", ""))
        if trigger not in TRIGGERS:
            raise RulesError(f"{where}.trigger: unknown trigger {trigger!r}")
        for key in ("text", "rationale"):
            template = entry.get(key)
            if not isinstance(template, str) or not template:
                raise RulesError(f"{where}.{key}: must be a non-empty string")
            # Parse now so a broken template fails at start-up.
            list(string.Formatter().parse(template))
        rules.append(
            Rule(
                rule_id=rule_id,
                trigger=trigger,
                params=dict(entry.get("params") or {}),
                priority=_enum(common_pb2.Priority, "PRIORITY_", entry.get("priority"), where),
                category=_enum(
                    common_pb2.RecommendationCategory,
                    "RECOMMENDATION_CATEGORY_",
                    entry.get("category"),
                    where,
                ),
                text=entry["text"],
                rationale=entry["rationale"],
                suppressed_by=tuple(entry.get("suppressed_by") or ()),
            )
        )
    for rule in rules:
        for other in rule.suppressed_by:
            if other not in seen:
                raise RulesError(f"rule {rule.rule_id}.suppressed_by: unknown rule {other!r}")
    return RuleBook(str(raw.get("version", "")), tuple(rules), dict(raw.get("overall_risk") or {}))


def _render(template: str, fields: Mapping[str, Any], rule_id: str) -> str:
    try:
        text = template.format(**fields)
    except (KeyError, ValueError, IndexError) as exc:
        # A rules/trigger mismatch is a bug in this service, not in the caller's data.
        raise RulesError(f"rule {rule_id}: template does not fit its trigger's fields") from exc
    # A sentence that opens with a field ("{inhibitor} makes ...") starts with a capital
    # whatever case the service sent ("paroxetine" -> "Paroxetine makes ...").
    return text[:1].upper() + text[1:]


def recommend(book: RuleBook, ctx: Context) -> list[common_pb2.Recommendation]:
    """Apply every rule; suppressed rules drop out; highest priority first."""
    fired: dict[str, list[Match]] = {}
    for rule in book.rules:
        matches = TRIGGERS[rule.trigger](ctx, rule.params)
        if matches:
            fired[rule.rule_id] = matches
    out: list[common_pb2.Recommendation] = []
    for rule in book.rules:
        if rule.rule_id not in fired or any(s in fired for s in rule.suppressed_by):
            continue
        for match in fired[rule.rule_id]:
            out.append(
                common_pb2.Recommendation(
                    rule_id=rule.rule_id,
                    priority=rule.priority,
                    category=rule.category,
                    text=_render(rule.text, match.fields, rule.rule_id),
                    rationale=_render(rule.rationale, match.fields, rule.rule_id),
                    evidence=list(match.evidence),
                    source_section=match.source_section,
                    confidence=round(max(0.0, min(1.0, match.confidence)), 3),
                )
            )
    out.sort(key=lambda r: (r.priority, -r.confidence))
    return out
