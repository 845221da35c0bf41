"""The checks a drafted reply must pass before anyone sees it: those of every suggestion.

- **facts**: no claim (a price, promotion, stock, delivery, product ...) that the chat, what the
  customer's profile says and the catalogue do not support, and none they contradict
  (:class:`copilot.facts.Evidence`, as the suggestion engine grounds scripts);
- **compliance**: no rule of the brand's :class:`~copilot.compliance.ComplianceChecker` fires;
- **personal data**: nothing the text pipeline would mask (a phone number, WeChat id, address ...).

Each problem is a line the model can act on: :func:`copilot.llm.draft` feeds them back for its
one retry (``check=``), and a server returns them as the reasons a draft was rejected. They quote
the draft only through the checker's excerpts, in which personal data is a placeholder.

Example:
    >>> check = ReplyCheck.of([("customer", "这件有M码吗")], catalog, day, checker)
    >>> check("这款现在只要99元")
    ["fact: the price '99' is not supported by the chat, the customer's profile or the catalogue; ..."]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from copilot.catalog import Catalog
from copilot.compliance import ComplianceChecker
from copilot.facts import Evidence
from copilot.text import normalize_text
from copilot.text.pii import mask_pii

__all__ = ["ReplyCheck"]

_KIND = {
    "price": "the price",
    "stock": "the stock claim",
    "product": "the product",
    "place": "the place",
    "logistics": "the delivery status",
    "delivery_time": "the delivery time",
    "not_shipped": "'not shipped yet'",
    "done": "the claim that it is done",
    "asks": "asking again for",
}


@dataclass(frozen=True)
class ReplyCheck:
    """The problems of a reply in one conversation: ``check(text) -> list[str]`` (empty: fine).

    Attributes:
        evidence: what the conversation, the profile and the catalogue support.
        checker: the compliance rules.
        domain: the retail domain whose rules apply (``None``: every rule).
    """

    evidence: Evidence
    checker: ComplianceChecker
    domain: str | None = None

    @classmethod
    def of(
        cls,
        messages: Sequence[tuple[str, str]],
        catalog: Catalog | None,
        day: date | None,
        checker: ComplianceChecker,
        known: Mapping[str, str] | None = None,
        domain: str | None = None,
    ) -> ReplyCheck:
        """The check for a reply to ``messages`` (``(role, masked text)``, in order).

        Args:
            catalog: products and promotions a reply may cite.
            day: the chat's day (the promotions running then); today when ``None``.
            known: what the customer's profile says (``{"size", "product"}``); its product
                counts as named in the chat, as it does for the suggestions.
        """
        if known and known.get("product"):
            messages = [("customer", known["product"]), *messages]
        return cls(Evidence.of(messages, catalog, day), checker, domain)

    def __call__(self, text: str) -> list[str]:
        return self.facts(text) + self.compliance(text) + self.personal_data(text)

    def facts(self, text: str) -> list[str]:
        """Claims the evidence does not support, or contradicts."""
        out = []
        for problem in self.evidence.problems(text):
            what = f"{_KIND.get(problem.kind, problem.kind)} {problem.term!r}"
            verdict = (
                "is contradicted by" if problem.verdict == "contradicted" else "is not supported by"
            )
            out.append(
                f"fact: {what} {verdict} the chat, the customer's profile or the catalogue; "
                "leave it out, or say only what they say"
            )
        return out

    def compliance(self, text: str) -> list[str]:
        """The compliance rules the text breaks."""
        return [
            f"compliance: rule {hit.rule_id} ({hit.kind}) matches {hit.excerpt}; rewrite without it"
            for hit in self.checker.check(text, domain=self.domain)
        ]

    def personal_data(self, text: str) -> list[str]:
        """Personal data in the text, by kind (never quoted)."""
        kinds = mask_pii(normalize_text(text))[1]
        if not kinds:
            return []
        return [
            f"personal data: the reply contains {', '.join(sorted(kinds))}; never write phone "
            "numbers, WeChat ids, addresses or other personal data in a reply"
        ]
