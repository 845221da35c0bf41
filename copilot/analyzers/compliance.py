"""Compliance flags on guide messages, from the rules in ``copilot/data/compliance_rules.yaml``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from copilot.annotations import Flag
from copilot.compliance import ComplianceChecker, Hit, default_checker
from copilot.pipeline import Analyzer, Doc
from copilot.schema import Conversation

__all__ = ["ComplianceAnalyzer", "compliance_flags"]


def compliance_flags(
    conversation: Conversation, check: Callable[[str, str | None], Sequence[Hit]]
) -> list[Flag]:
    """The compliance flags of a conversation's guide messages: the one flag builder.

    ``check(text, domain)`` returns a message's rule hits (a checker's ``check``, or a memo of
    it). ``rule`` is the hit's kind (``absolute_claim``), as everywhere a flag is shown.
    """
    meta_domain = conversation.meta.get("domain")
    domain = meta_domain if isinstance(meta_domain, str) else None
    return [
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
        for i, message in enumerate(conversation.messages)
        if message.role == "guide"
        for hit in check(message.text, domain)
    ]


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
        check = self.checker.check
        return [
            {"compliance": compliance_flags(doc.conversation, lambda t, d: check(t, domain=d))}
            for doc in docs
        ]
