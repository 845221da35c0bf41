"""Compliance flags on guide messages, from the rules in ``copilot/data/compliance_rules.yaml``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from copilot.annotations import Flag
from copilot.compliance import ComplianceChecker, default_checker
from copilot.pipeline import Analyzer, Doc

__all__ = ["ComplianceAnalyzer"]


class ComplianceAnalyzer(Analyzer):
    """Assigns ``compliance``: a list of :class:`Flag` (kind ``compliance``), one per rule hit.

    Only guide messages are checked: the guide answers for what the brand says, not the customer
    (a customer who types their own phone number is not a violation). The domain rules apply by
    the conversation's ``meta.domain`` when it has one, else every rule runs.
    """

    name = "compliance"
    assigns = ("compliance",)

    def __init__(self, checker: ComplianceChecker | None = None) -> None:
        self.checker = checker or default_checker()

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        out = []
        for doc in docs:
            conv = doc.conversation
            domain = conv.meta.get("domain") if isinstance(conv.meta.get("domain"), str) else None
            flags = [
                Flag(
                    kind="compliance",
                    rule=hit.kind,
                    severity=hit.severity,
                    message_index=i,
                    excerpt=hit.excerpt,
                    explanation=hit.explanation,
                    start=hit.start,
                    end=hit.end,
                )
                for i, message in enumerate(conv.messages)
                if message.role == "guide"
                for hit in self.checker.check(message.text, domain=domain)
            ]
            out.append({"compliance": flags})
        return out
