"""The quality dimensions of the taxonomy, each 0-100 with evidence, and the overall score.

Each dimension measures a guide behaviour a supervisor would coach on, from the annotations of
the analyzers (intents and acts, timing, sentiment, compliance), with settings from the rubric:

=====================  ==================================================================
dimension              score
=====================  ==================================================================
responsiveness         100 minus deductions for a slow first response, a slow median reply,
                       each slow reply and each message left unanswered
needs_discovery        whether the guide asked about needs (question with a discovery act)
                       before recommending; n/a outside sales conversations
answer_coverage        share of customer questions whose reply window holds an act that
                       answers that intent; n/a without questions
objection_handling     share of objections met with a handling act (a terse one earns part
                       of the credit); n/a without objections
closing                a close after each purchase signal, a follow-up after each hesitation,
                       a close attempt after several buying questions; n/a without them
courtesy               100 minus rude replies, curt replies and a customer who ends unhappy
compliance             100 minus points per violation by severity (rude language is courtesy)
experience             the rubric's start plus points per evidence signal (sentiment
                       trajectory, repeated or unanswered questions, how the customer left,
                       message lengths ...: :mod:`copilot.analyzers.signals`), clipped to 0-100
=====================  ==================================================================

A dimension that does not apply is ``None`` and the overall score is the weighted mean of the
others; a conversation without any customer message (a broadcast nobody answered) has no
overall score. A greeting is not a question: answer_coverage counts only the intents the
rubric's ``answers`` lists. Every deduction is :class:`Evidence` naming its message; evidence of good practice has
0 points (experience signals with positive points, such as thanks at the end, add them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from copilot.analyzers.cues import asks_question, is_polite
from copilot.annotations import DimensionScore, Evidence, excerpt_of
from copilot.pipeline import Analyzer, Doc
from copilot.scoring.rubric import DIMENSIONS, Rubric

if TYPE_CHECKING:
    from copilot.analyzers.signals import Signals
    from copilot.analyzers.timing import Timing
    from copilot.annotations import Flag
    from copilot.taxonomy import Taxonomy

__all__ = ["RubricAnalyzer", "score_dimensions"]

_MAX_EVIDENCE = 8


@dataclass
class _View:
    """One conversation as the dimension functions read it."""

    doc: Doc
    rubric: Rubric
    taxonomy: Taxonomy

    def __post_init__(self) -> None:
        conv = self.doc.conversation
        self.messages = conv.messages
        self.roles = [m.role for m in self.messages]
        preds = self.doc["labels"]
        self.labels: list[str | None] = [p.label if p else None for p in preds]
        self.acts: list[frozenset[str] | None] = self.doc["acts"]
        self.timing: Timing = self.doc["timing"]
        self.need = self.timing.needs_answer

    def does(self, i: int, actions: Sequence[str]) -> bool:
        """Whether guide message ``i`` performs one of ``actions``."""
        acts = self.acts[i]
        return acts is not None and not acts.isdisjoint(actions)

    def name(self, label: str | None) -> str:
        return self.taxonomy.name_of(label) if label else "未识别"

    def quote(self, i: int, limit: int = 24) -> str:
        return f"「{excerpt_of(self.messages[i].text, limit)}」"

    def customer(self, intents: Sequence[str] | dict[str, Any]) -> list[int]:
        """Customer messages needing an answer with one of ``intents``, consecutive repeats of
        the same intent merged into their last message (a question split over two messages)."""
        out: list[int] = []
        for i, role in enumerate(self.roles):
            if role != "customer" or not self.need[i] or self.labels[i] not in intents:
                continue
            prev = out[-1] if out else None
            if (
                prev is not None
                and self.labels[prev] == self.labels[i]
                and all(r == "customer" for r in self.roles[prev:i])
            ):
                out[-1] = i
            else:
                out.append(i)
        return out

    def window(self, i: int) -> list[int]:
        """Guide messages answering customer message ``i``: those after it, up to the next
        customer message that needs an answer once the guide has spoken (so 「稍等我查下」,
        「好」, then the answer still counts)."""
        out: list[int] = []
        for j in range(i + 1, len(self.messages)):
            if self.roles[j] == "guide":
                out.append(j)
            elif self.roles[j] == "customer" and out and self.need[j]:
                break
        return out

    def guide(self) -> list[int]:
        return [i for i, r in enumerate(self.roles) if r == "guide"]


def _score(items: list[tuple[float, Evidence]]) -> DimensionScore:
    """Share-of-credit score: ``items`` are (credit 0..1, evidence) pairs; ``None`` if empty."""
    if not items:
        return DimensionScore(None)
    score = 100.0 * sum(c for c, _ in items) / len(items)
    return DimensionScore(score, _ranked([e for _, e in items]))


def _deducted(evidence: list[Evidence]) -> DimensionScore:
    """100 minus the evidence's deductions, clipped at 0."""
    score = max(0.0, 100.0 + sum(e.points for e in evidence))
    return DimensionScore(score, _ranked(evidence))


def _ranked(evidence: list[Evidence]) -> list[Evidence]:
    """Largest deductions first, then good practice, in message order; at most a handful."""
    return sorted(evidence, key=lambda e: (e.points, e.message_index))[:_MAX_EVIDENCE]


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} 分钟" if seconds >= 60 else f"{seconds:.0f} 秒"


def _slowness(seconds: float, target: float) -> float:
    """0 at or below ``target``, rising with the log of the excess to 1 at 30x the target."""
    import math

    if seconds <= target:
        return 0.0
    return min(1.0, math.log(seconds / target) / math.log(30.0))


# ----------------------------------------------------------------------------- dimensions


def responsiveness(v: _View) -> DimensionScore:
    t, rules = v.timing, v.rubric.timing
    if not t.replies:
        return DimensionScore(None)
    ev: list[Evidence] = []
    if t.first_response_s is not None and t.first_response_index is not None:
        cut = 25.0 * _slowness(t.first_response_s, rules.first_response_target_s)
        if cut >= 1:
            ev.append(
                Evidence(
                    t.first_response_index,
                    f"首次响应用时 {_minutes(t.first_response_s)}，"
                    f"目标 {_minutes(rules.first_response_target_s)} 内",
                    -cut,
                )
            )
        else:
            ev.append(Evidence(t.first_response_index, "首次响应及时"))
    timed = [r for r in t.replies if r.seconds is not None and r.reply_index is not None]
    if timed:
        latencies = sorted(r.seconds for r in timed if r.seconds is not None)
        median = latencies[len(latencies) // 2]
        cut = 25.0 * _slowness(median, rules.reply_target_s)
        if cut >= 1:
            slowest = max(timed, key=lambda r: r.seconds or 0.0)
            assert slowest.reply_index is not None
            ev.append(
                Evidence(
                    slowest.reply_index,
                    f"回复普遍偏慢：中位用时 {_minutes(median)}，最慢一次 "
                    f"{_minutes(slowest.seconds or 0.0)}",
                    -cut,
                )
            )
    for k, r in enumerate(x for x in t.replies if x.late):
        ev.append(
            Evidence(
                r.message_index,
                f"顾客的{v.name(r.intent)}消息 {_minutes(r.seconds or 0.0)} 后才得到回复，"
                f"超过 {_minutes(r.threshold_s)} 时限",
                -10.0 if k < 3 else 0.0,
            )
        )
    for k, r in enumerate(t.unanswered):
        ev.append(
            Evidence(
                r.message_index,
                f"顾客的{v.name(r.intent)}消息{v.quote(r.message_index)}没有得到回复",
                -25.0 if k < 2 else 0.0,
            )
        )
    return _deducted(ev)


def needs_discovery(v: _View) -> DimensionScore:
    rules = v.rubric.discovery
    sales = [
        i for i, r in enumerate(v.roles) if r == "customer" and v.labels[i] in rules.sales_intents
    ]
    recs = [i for i in v.guide() if v.does(i, rules.recommend_actions)]
    if not sales and not recs:
        return DimensionScore(None)
    asked = [i for i in v.guide() if v.does(i, rules.actions) and asks_question(v.messages[i].text)]
    first_rec = recs[0] if recs else None
    before = [i for i in asked if first_rec is None or i < first_rec]
    if before:
        score = 100.0 if len(before) >= 2 else 85.0
        reason = "推荐前先询问了顾客需求" if first_rec is not None else "询问了顾客的需求"
        return DimensionScore(score, [Evidence(before[0], f"{reason}{v.quote(before[0])}")])
    if asked and first_rec is not None:
        return DimensionScore(
            60.0,
            [
                Evidence(first_rec, "先推荐后询问需求：推荐前没有了解顾客情况", -40.0),
                Evidence(asked[0], f"推荐后才询问需求{v.quote(asked[0])}"),
            ],
        )
    if first_rec is not None:
        return DimensionScore(
            20.0,
            [
                Evidence(
                    first_rec,
                    "没有了解顾客的需求（用途、尺码、肤质、预算等）就直接推荐",
                    -80.0,
                )
            ],
        )
    return DimensionScore(
        40.0,
        [
            Evidence(
                sales[0],
                f"顾客在咨询{v.name(v.labels[sales[0]])}，导购始终没有询问需求",
                -60.0,
            )
        ],
    )


def answer_coverage(v: _View) -> DimensionScore:
    answers = v.rubric.answers
    items: list[tuple[float, Evidence]] = []
    questions = v.customer(answers)
    n = len(questions)
    for i in questions:
        intent = v.labels[i]
        assert intent is not None
        window = v.window(i)
        hit = next((j for j in window if v.does(j, answers[intent])), None)
        if hit is not None:
            items.append((1.0, Evidence(hit, f"解答了顾客的{v.name(intent)}问题")))
        elif not window:
            items.append(
                (
                    0.0,
                    Evidence(
                        i, f"顾客问{v.quote(i)}（{v.name(intent)}），导购没有回复", -100.0 / n
                    ),
                )
            )
        else:
            did = "、".join(dict.fromkeys(v.name(v.labels[j]) for j in window))
            items.append(
                (
                    0.0,
                    Evidence(
                        i,
                        f"顾客问{v.quote(i)}（{v.name(intent)}），导购的回复（{did}）没有解答",
                        -100.0 / n,
                    ),
                )
            )
    return _score(items)


def objection_handling(v: _View) -> DimensionScore:
    handling = v.rubric.objections
    objections = v.customer(handling)
    items: list[tuple[float, Evidence]] = []
    for i in objections:
        intent = v.labels[i]
        assert intent is not None
        hit = next((j for j in v.window(i) if v.does(j, handling[intent])), None)
        share = -100.0 / len(objections)
        if hit is None:
            items.append(
                (
                    0.0,
                    Evidence(i, f"顾客{v.quote(i)}表达了{v.name(intent)}，导购没有回应处理", share),
                )
            )
        elif len(v.messages[hit].text.strip()) < v.rubric.substantive_reply_chars:
            credit = v.rubric.terse_credit
            items.append(
                (
                    credit,
                    Evidence(
                        hit,
                        f"对顾客的{v.name(intent)}只做了简短回应{v.quote(hit)}，没有给出理由或方案",
                        share * (1 - credit),
                    ),
                )
            )
        else:
            items.append(
                (
                    1.0,
                    Evidence(hit, f"针对顾客的{v.name(intent)}做了处理（{v.name(v.labels[hit])}）"),
                )
            )
    return _score(items)


def closing(v: _View) -> DimensionScore:
    rules = v.rubric.closing
    guide = v.guide()
    items: list[tuple[float, Evidence]] = []
    signals = v.customer(rules.purchase_signals)
    for i in signals:
        window = v.window(i)
        now = next((j for j in window if v.does(j, rules.close_actions)), None)
        later = next((j for j in guide if j > i and v.does(j, rules.close_actions)), None)
        if now is not None:
            items.append((1.0, Evidence(now, "顾客表达购买意向后及时促成下单")))
        elif later is not None:
            items.append(
                (0.7, Evidence(i, f"顾客{v.quote(i)}表达购买意向，导购隔了几轮才促单", -30.0))
            )
        else:
            items.append(
                (0.0, Evidence(i, f"顾客{v.quote(i)}表达购买意向，导购没有促成下单", -100.0))
            )
    for i in v.customer(rules.hesitations):
        follow = next((j for j in guide if j > i and v.does(j, rules.follow_up_actions)), None)
        if follow is not None:
            items.append((1.0, Evidence(follow, "顾客犹豫后约定了跟进")))
        else:
            items.append((0.0, Evidence(i, f"顾客犹豫{v.quote(i)}，导购没有约定后续跟进", -100.0)))
    if not signals:
        sales = v.customer(v.rubric.discovery.sales_intents)
        if len(sales) >= rules.sales_questions_before_close:
            close = next((j for j in guide if v.does(j, rules.close_actions)), None)
            if close is not None:
                items.append((1.0, Evidence(close, "顾客多次咨询后导购主动促单")))
            else:
                items.append(
                    (
                        0.0,
                        Evidence(
                            sales[-1],
                            f"顾客连续咨询了 {len(sales)} 个购买相关问题，导购始终没有尝试促单",
                            -100.0,
                        ),
                    )
                )
    if items:  # deductions as shares of the whole, like the score
        n = len(items)
        items = [(c, Evidence(e.message_index, e.reason, e.points / n)) for c, e in items]
    return _score(items)


def courtesy(v: _View) -> DimensionScore:
    rules = v.rubric.courtesy
    guide = v.guide()
    if not guide:
        return DimensionScore(None)
    flags: list[Flag] = v.doc["compliance"]
    ev = [
        Evidence(f.message_index, f"不礼貌或敷衍的用语：{f.excerpt}", -rules.rude_points)
        for f in flags
        if f.rule == "rude"
    ]
    rude = {e.message_index for e in ev}
    curt = [
        i
        for i in guide
        if i not in rude
        and len(v.messages[i].text.strip()) <= rules.curt_reply_chars
        and not is_polite(v.messages[i].text)
    ]
    ev += [
        Evidence(i, f"回复生硬简短{v.quote(i)}，缺少礼貌用语", -rules.curt_points if k < 3 else 0.0)
        for k, i in enumerate(curt)
    ]
    sentiment = v.doc["sentiment"]
    summary = sentiment.summary()
    scored = [i for i, s in enumerate(sentiment.scores) if s is not None]
    if scored and summary["trend"] is not None and summary["end"] is not None:
        low = min(scored[len(scored) // 2 :], key=lambda i: sentiment.scores[i])
        if summary["trend"] <= -0.4 and summary["end"] < -0.2:
            ev.append(
                Evidence(low, f"顾客情绪在对话中变差{v.quote(low)}", -rules.negative_end_points)
            )
        elif summary["end"] > 0.3:
            ev.append(Evidence(scored[-1], "对话结束时顾客情绪积极"))
    if not ev:
        polite = next((i for i in guide if is_polite(v.messages[i].text)), None)
        if polite is not None:
            ev.append(Evidence(polite, "用语礼貌"))
    return _deducted(ev)


def compliance(v: _View) -> DimensionScore:
    if not v.guide():
        return DimensionScore(None)
    points = v.rubric.compliance.severity_points
    flags: list[Flag] = v.doc["compliance"]
    ev = [
        Evidence(f.message_index, f"{f.explanation}：{f.excerpt}", -points.get(f.severity, 25.0))
        for f in flags
        if f.rule != "rude"
    ]
    return _deducted(ev)


def experience(v: _View) -> DimensionScore:
    if "customer" not in v.roles:
        return DimensionScore(None)
    rules = v.rubric.experience
    signals: Signals = v.doc["signals"]
    ev = [
        Evidence(s.message_index, s.reason, rules.points[s.name] * s.value)
        for s in signals.found
        if rules.points.get(s.name)
    ]
    # The largest effects either way (a bonus for thanks at the end must not be crowded out by
    # many small length shares), deductions first.
    chosen = sorted(ev, key=lambda e: (-abs(e.points), e.message_index))[:_MAX_EVIDENCE]
    chosen.sort(key=lambda e: (e.points >= 0, -abs(e.points), e.message_index))
    return DimensionScore(rules.score(signals.totals()), chosen)


_SCORERS: dict[str, Callable[[_View], DimensionScore]] = {
    "responsiveness": responsiveness,
    "needs_discovery": needs_discovery,
    "answer_coverage": answer_coverage,
    "objection_handling": objection_handling,
    "closing": closing,
    "courtesy": courtesy,
    "compliance": compliance,
    "experience": experience,
}
assert tuple(_SCORERS) == DIMENSIONS


def score_dimensions(doc: Doc, rubric: Rubric, taxonomy: Taxonomy) -> dict[str, DimensionScore]:
    """Every dimension's score and evidence for one analysed doc."""
    view = _View(doc, rubric, taxonomy)
    return {d: fn(view) for d, fn in _SCORERS.items()}


class RubricAnalyzer(Analyzer):
    """Assigns ``dimensions`` (id -> :class:`DimensionScore`) and ``overall`` (0-100 or None)."""

    name = "rubric"
    requires = ("labels", "acts", "timing", "sentiment", "compliance", "signals")
    assigns = ("dimensions", "overall")

    def __init__(self, rubric: Rubric, taxonomy: Taxonomy) -> None:
        self.rubric = rubric
        self.taxonomy = taxonomy

    def predict(self, docs: Sequence[Doc]) -> list[dict[str, Any]]:
        out = []
        for doc in docs:
            dims = score_dimensions(doc, self.rubric, self.taxonomy)
            overall = self.rubric.overall({d: s.score for d, s in dims.items()})
            if "customer" not in (m.role for m in doc.conversation.messages):
                # A broadcast nobody answered: compliance and courtesy still read its messages
                # (and flag them), but there is no conversation to grade; 100 would mislead.
                overall = None
            out.append({"dimensions": dims, "overall": overall})
        return out
