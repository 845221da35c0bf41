"""WeCom conversation archive (企业微信会话存档): one decrypted message per line -> chat threads.

An archive line looks like::

    {"msgid": "m-1", "action": "send", "from": "zhangsan", "tolist": ["wmEAAA"], "roomid": "",
     "msgtime": 1709863262000, "msgtype": "text", "text": {"content": "亲，在的～"}}

:func:`parse_message` turns one line into a :class:`WecomMessage` (or raises
:class:`~copilot.errors.RecordError` with the reason it cannot be used); :class:`ThreadGrouper`
groups the messages of each (staff, customer) pair into threads, splitting on gaps longer than
``gap_hours`` and closing a thread once the archive's clock has moved past its last message by
more than that, so memory holds only the threads still open. Turning a thread into a
:class:`~copilot.schema.Conversation` is the reader's job (:mod:`copilot.io.readers`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from copilot.errors import RecordError

__all__ = [
    "EXTERNAL_PREFIXES",
    "PLACEHOLDERS",
    "TEXT_MSGTYPES",
    "Thread",
    "ThreadGrouper",
    "WecomMessage",
    "is_external",
    "parse_message",
]

EXTERNAL_PREFIXES = ("wo", "wm")
"""External contacts' ids (customers) start with these; staff ids do not."""

TEXT_MSGTYPES = {"text": ("text", "content"), "markdown": ("info", "content")}
"""msgtypes that carry typed text: msgtype -> (object key, text key)."""

# msgtype -> (placeholder, (object key, detail key) or None). The detail (a link title, a file
# name) is appended after the placeholder when present, e.g. "[链接] 春季新品".
PLACEHOLDERS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "image": ("[图片]", None),
    "voice": ("[语音]", None),
    "video": ("[视频]", None),
    "emotion": ("[表情]", None),
    "file": ("[文件]", ("file", "filename")),
    "link": ("[链接]", ("link", "title")),
    "weapp": ("[小程序]", ("weapp", "title")),
    "card": ("[名片]", None),
    "location": ("[位置]", ("location", "title")),
    "revoke": ("[撤回消息]", None),
    "redpacket": ("[红包]", None),
    "external_redpacket": ("[红包]", None),
    "chatrecord": ("[聊天记录]", ("chatrecord", "title")),
    "news": ("[图文]", None),
    "mixed": ("[图文消息]", None),
    "todo": ("[待办]", ("todo", "title")),
    "vote": ("[投票]", ("vote", "votetitle")),
    "collect": ("[填表]", ("collect", "title")),
    "calendar": ("[日程]", ("calendar", "title")),
    "meeting": ("[会议]", ("meeting", "topic")),
    "docmsg": ("[在线文档]", ("doc", "title")),
    "qydiskfile": ("[微盘文件]", None),
    "sphfeed": ("[视频号]", ("sphfeed", "feed_desc")),
    "voiptext": ("[音视频通话]", None),
    "meeting_voice_call": ("[语音会议]", None),
    "voip_doc_share": ("[文档共享]", None),
    "agree": ("[同意会话存档]", None),
    "disagree": ("[不同意会话存档]", None),
}

# Consent events are not part of the chat itself: they become ``system`` messages.
_SYSTEM_MSGTYPES = frozenset({"agree", "disagree"})
_KNOWN_MSGTYPES = ", ".join([*TEXT_MSGTYPES, *PLACEHOLDERS])
_DETAIL_CHARS = 100


@dataclass(frozen=True)
class WecomMessage:
    """One usable archive message of a one-to-one chat, already oriented staff -> customer."""

    msgid: str
    staff: str
    customer: str
    role: str  # "guide", "customer" or "system"
    text: str
    msgtime: int  # epoch milliseconds


@dataclass
class Thread:
    """The messages of one (staff, customer) pair with no gap longer than ``gap_hours``.

    ``items`` are ``(line, message)`` pairs in archive order.
    """

    staff: str
    customer: str
    items: list[tuple[int, WecomMessage]] = field(default_factory=list)
    _msgids: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def first_msgtime(self) -> int:
        return self.items[0][1].msgtime

    @property
    def last_msgtime(self) -> int:
        return self.items[-1][1].msgtime

    @property
    def conversation_id(self) -> str:
        """Deterministic id: ``wecom-{staff}-{customer}-{first msgtime}``."""
        return f"wecom-{self.staff}-{self.customer}-{self.first_msgtime}"


def is_external(user_id: str) -> bool:
    """True for an external contact's id (starts with ``wo`` or ``wm``)."""
    return user_id.startswith(EXTERNAL_PREFIXES)


def parse_message(obj: Mapping[str, Any], staff_ids: Collection[str] | None = None) -> WecomMessage:
    """Read one decoded archive line.

    Args:
        obj: the JSON object of one archive line.
        staff_ids: the staff (guide) user ids; when None, external contacts are recognised by
            their ``wo``/``wm`` prefix and the other party is staff.

    Returns:
        The message, oriented staff -> customer, with its text or placeholder.

    Raises:
        RecordError: a group chat, an ``action=switch`` event, an unknown msgtype, a missing
            field, or a chat whose staff and customer cannot be told apart.
    """
    action = obj.get("action", "send")
    if action == "switch":
        raise RecordError(
            "action 'switch' records a staff member switching enterprise login; it carries no "
            "chat message"
        )
    if action not in ("send", "recall"):
        raise RecordError(f"action: expected 'send', 'recall' or 'switch' (got {action!r})")
    roomid = obj.get("roomid") or ""
    if roomid:
        raise RecordError(
            f"group chat (roomid {roomid!r}): only one-to-one chats become conversations"
        )
    sender = _required_str(obj, "from")
    tolist = obj.get("tolist")
    if not isinstance(tolist, list) or len(tolist) != 1 or not isinstance(tolist[0], str):
        raise RecordError(
            f"tolist: a one-to-one chat needs exactly one recipient id (got {tolist!r})"
        )
    staff, customer = _orient(sender, tolist[0], staff_ids)
    msgtime = obj.get("msgtime")
    if isinstance(msgtime, str) and msgtime.isdigit():  # some export tools quote numbers
        msgtime = int(msgtime)
    if not isinstance(msgtime, int) or isinstance(msgtime, bool) or msgtime < 0:
        raise RecordError(f"msgtime: expected epoch milliseconds, an integer (got {msgtime!r})")
    msgtype = _required_str(obj, "msgtype")
    role = "system" if msgtype in _SYSTEM_MSGTYPES else ("guide" if sender == staff else "customer")
    return WecomMessage(
        msgid=str(obj.get("msgid") or ""),
        staff=staff,
        customer=customer,
        role=role,
        text=_text_of(obj, msgtype),
        msgtime=msgtime,
    )


def _required_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise RecordError(
            f"{key}: field is required (a non-empty string)"
            if value is None
            else f"{key}: expected a non-empty string (got {value!r})"
        )
    return value


def _orient(sender: str, recipient: str, staff_ids: Collection[str] | None) -> tuple[str, str]:
    """(staff, customer) of a one-to-one chat."""
    if staff_ids is not None:
        sender_staff, recipient_staff = sender in staff_ids, recipient in staff_ids
        if sender_staff and recipient_staff:
            raise RecordError(
                f"internal chat between staff {sender!r} and {recipient!r} (both in staff_ids)"
            )
        if not sender_staff and not recipient_staff:
            raise RecordError(
                f"neither {sender!r} nor {recipient!r} is in staff_ids; add the guide's id to "
                "the staff list"
            )
        return (sender, recipient) if sender_staff else (recipient, sender)
    sender_ext, recipient_ext = is_external(sender), is_external(recipient)
    if sender_ext == recipient_ext:
        kind = "external contacts" if sender_ext else "staff (no external contact)"
        raise RecordError(
            f"cannot tell staff from customer: {sender!r} and {recipient!r} are both {kind}; "
            "external ids start with 'wo' or 'wm' (or pass the staff ids)"
        )
    return (recipient, sender) if sender_ext else (sender, recipient)


def _text_of(obj: Mapping[str, Any], msgtype: str) -> str:
    if msgtype in TEXT_MSGTYPES:
        key, text_key = TEXT_MSGTYPES[msgtype]
        body = obj.get(key)
        text = body.get(text_key) if isinstance(body, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise RecordError(f"{key}.{text_key}: msgtype {msgtype!r} message has no text")
        return text
    if msgtype not in PLACEHOLDERS:
        raise RecordError(f"unknown msgtype {msgtype!r}; known msgtypes: {_KNOWN_MSGTYPES}")
    placeholder, detail_at = PLACEHOLDERS[msgtype]
    if detail_at is not None:
        body = obj.get(detail_at[0])
        detail = body.get(detail_at[1]) if isinstance(body, dict) else None
        if isinstance(detail, str) and detail.strip():
            return f"{placeholder} {detail.strip()[:_DETAIL_CHARS]}"
    return placeholder


class ThreadGrouper:
    """Groups time-ordered archive messages into threads, holding only the open ones.

    Call :meth:`advance` with each message's time (it returns the threads that the clock has
    closed), then :meth:`add` (it returns the pair's previous thread when a gap closed it), and
    :meth:`finish` at the end. A message that arrives for a pair after its thread was closed
    (an archive slightly out of order) starts a new thread.

    Args:
        gap_hours: a gap longer than this between two messages of a pair starts a new thread.
    """

    def __init__(self, gap_hours: float = 12.0) -> None:
        self.gap_ms = gap_hours * 3_600_000
        self._open: OrderedDict[tuple[str, str], Thread] = OrderedDict()  # oldest activity first
        self._clock: int | None = None

    def __len__(self) -> int:
        return len(self._open)

    def advance(self, msgtime: int) -> list[Thread]:
        """Move the archive clock to ``msgtime``; return the threads idle for over the gap."""
        if self._clock is None or msgtime > self._clock:
            self._clock = msgtime
        closed: list[Thread] = []
        while self._open:
            thread = next(iter(self._open.values()))
            if self._clock - thread.last_msgtime <= self.gap_ms:
                break
            closed.append(self._open.pop((thread.staff, thread.customer)))
        return closed

    def add(self, line: int, message: WecomMessage) -> list[Thread]:
        """Add a message; return the pair's previous thread if this message starts a new one.

        Raises:
            RecordError: the message repeats a msgid already in its open thread.
        """
        key = (message.staff, message.customer)
        thread = self._open.get(key)
        closed: list[Thread] = []
        if thread is not None and message.msgid and message.msgid in thread._msgids:
            raise RecordError(
                f"duplicate msgid {message.msgid!r} (already read on line "
                f"{thread._msgids[message.msgid]})"
            )
        if thread is not None and message.msgtime - thread.last_msgtime > self.gap_ms:
            closed.append(self._open.pop(key))
            thread = None
        if thread is None:
            thread = self._open[key] = Thread(staff=message.staff, customer=message.customer)
        thread.items.append((line, message))
        if message.msgid:
            thread._msgids[message.msgid] = line
        self._open.move_to_end(key)
        return closed

    def finish(self) -> list[Thread]:
        """Close every open thread, ordered by first message time."""
        threads = sorted(self._open.values(), key=lambda t: (t.first_msgtime, t.conversation_id))
        self._open.clear()
        return threads
