"""E-mail normalisation: HTML to text, Message-ID threading, sender identifier."""

from __future__ import annotations

import re
import warnings
from email.utils import parseaddr

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning
from bs4.element import NavigableString

from services.ingest.channels.common import add_identifier
from services.ingest.errors import InvalidInteraction
from tsunagu.identifiers import IdentifierFormatError, normalize_email
from tsunagu.v1 import interaction_pb2

# A body that happens to look like a URL or a file name is still a mail body, never a locator.
warnings.filterwarnings("ignore", category=MarkupResemblesLocatorWarning)

# Elements whose text is never shown to a reader.
_DROPPED_TAGS = ("script", "style", "head", "title", "template", "noscript")
# Elements that end a line of text.
_LINE_TAGS = frozenset(
    {
        "address", "article", "aside", "body", "caption", "center", "dd", "details", "div",
        "dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "html", "li",
        "main", "nav", "section", "summary", "tbody", "td", "tfoot", "th", "thead", "tr",
    }
)  # fmt: skip
# Elements that stand apart as a paragraph (a blank line before and after).
_PARAGRAPH_TAGS = frozenset(
    {"blockquote", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre", "table", "ul"}
)

_WHITESPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")
_MESSAGE_ID_IN_BRACKETS = re.compile(r"<([^<>]*)>")


class _Boundary(NavigableString):
    """Marker inserted around a block element: a line break or a blank line, never text."""


class _LineBreak(NavigableString):
    """Marker replacing a <br>: one line break each, so that <br><br> leaves a blank line."""


def html_to_text(html: str) -> str:
    """Render an HTML mail body as plain text.

    Scripts, styles and the head are dropped; block elements end lines and paragraphs are
    separated by one blank line; whitespace inside text is collapsed as a browser would.

    Args:
        html: The HTML body.

    Returns:
        Plain text with no leading, trailing or repeated blank lines.
    """
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROPPED_TAGS):
        tag.decompose()
    for tag in soup.find_all("br"):
        tag.replace_with(_LineBreak("\n"))
    for tag in soup.find_all(_LINE_TAGS | _PARAGRAPH_TAGS):
        mark = "\n\n" if tag.name in _PARAGRAPH_TAGS else "\n"
        tag.insert_before(_Boundary(mark))
        tag.insert_after(_Boundary(mark))
    pieces: list[str] = []
    # Adjacent blocks share their boundary (the stronger break wins, they do not add up);
    # line breaks do add up.
    pending_break = ""
    # `descendants` walks the tree iteratively, so deeply nested markup cannot hit the
    # recursion limit. Comments, CDATA, doctypes and <rt> ruby readings are other
    # NavigableString subclasses and are skipped by the exact type test.
    for node in soup.descendants:
        if isinstance(node, _Boundary):
            pending_break = max(pending_break, str(node), key=len)
        elif isinstance(node, _LineBreak):
            pending_break += "\n"
        elif type(node) is NavigableString:
            text = _WHITESPACE.sub(" ", str(node))
            if pending_break and text.strip():
                pieces.append(pending_break)
                pending_break = ""
            pieces.append(text)
    lines = (" ".join(line.split()) for line in "".join(pieces).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def message_ids(raw: str) -> list[str]:
    """Split a Message-ID style header value into normalised `<id@host>` ids.

    Args:
        raw: `"<a@x> <b@y>"`, `"a@x"`, `" < a@x > "`, ...

    Returns:
        The ids, each with whitespace removed and exactly one pair of angle brackets.
    """
    bracketed = _MESSAGE_ID_IN_BRACKETS.findall(raw)
    parts = bracketed if bracketed else raw.split()
    ids: list[str] = []
    for part in parts:
        core = "".join(part.split()).strip("<>")
        if core:
            ids.append(f"<{core}>")
    return ids


def normalize(interaction: interaction_pb2.Interaction, *, region: str) -> None:
    """Normalise an e-mail in place.

    The HTML body becomes `text_body` (when there is none) and the text body the content
    text; the subject fills `content.subject`. Message ids get one `<id@host>` form, and the
    thread root (first References entry, else In-Reply-To, else the message's own id) gives
    `conversation_ref = email:<root>`. An inbound mail's sender becomes an EMAIL identifier,
    verified when the mail replies in a thread.

    Args:
        interaction: The pipeline's copy of the interaction (mutated).
        region: Tenant's default phone region (unused: no phone numbers here).

    Raises:
        InvalidInteraction: A Message-ID that is not exactly one id, or a sender address that
            is not an e-mail address.
    """
    del region  # every normaliser has the same signature; e-mail has no phone numbers
    mail = interaction.email
    own_ids = message_ids(mail.message_id)
    if len(own_ids) != 1:
        raise InvalidInteraction("email.message_id", "must be exactly one message id")
    mail.message_id = own_ids[0]
    reply_ids = message_ids(mail.in_reply_to)
    mail.in_reply_to = " ".join(reply_ids)
    references = [ref for entry in mail.references for ref in message_ids(entry)]
    del mail.references[:]
    mail.references.extend(references)
    root = references[0] if references else reply_ids[0] if reply_ids else mail.message_id
    interaction.conversation_ref = f"email:{root}"

    mail.from_address = _sender_address(mail.from_address)
    if interaction.direction == interaction_pb2.DIRECTION_INBOUND:
        # A reply in a thread proves the sender reads the mailbox our mail went to; a new
        # mail's From is whatever the sender typed.
        add_identifier(
            interaction,
            interaction_pb2.IDENTIFIER_KIND_EMAIL,
            mail.from_address,
            verified=bool(reply_ids or references),
        )

    if not mail.text_body.strip() and mail.html_body.strip():
        mail.text_body = html_to_text(mail.html_body)
    if not interaction.content.text:
        interaction.content.text = mail.text_body
    if not interaction.content.subject:
        interaction.content.subject = mail.subject


def _sender_address(raw: str) -> str:
    # Mail gateways often pass the header as is: `Taro Yamada <taro@example.jp>`.
    address = parseaddr(raw)[1] if "<" in raw else raw
    try:
        return normalize_email(address)
    except IdentifierFormatError as exc:
        raise InvalidInteraction("email.from_address", str(exc)) from exc
