"""One message's text reduced to what the customer is asking: masked, without pleasantries."""

from __future__ import annotations

import re
import unicodedata

from services.insights.text.masking import mask

# A sign-off starting a line or a sentence: what follows it is a signature when it is short.
_SIGN_OFF = re.compile(
    r"(?:^|(?<=[\n.!?。!]))\s*(?:--+|__+|best regards|kind regards|regards|best|cheers|sincerely"
    r"|thanks(?: again)?|thank you(?: in advance)?|many thanks|sent from my|以上|よろしくお願い"
    r"|宜しくお願い|何卒よろしく|どうぞよろしく)",
    re.IGNORECASE,
)
# Longer than this after a sign-off is more request, not a name and a company.
_SIGNATURE_CHARS = 60
# Pleasantries anywhere in a message: openings, apologies for writing, closings.
_PLEASANTRIES = re.compile(
    r"(?:"
    r"\b(?:hello|hi|hey|dear|good (?:morning|afternoon|evening))\b[^.!?\n,]{0,25}[,!.]?"
    r"|\b(?:thanks|thank you)(?: (?:so|very) much)?(?: in advance)?(?: for your help)?[.!]?"
    r"|\b(?:best regards|kind regards|regards|sincerely)\b"
    r"|(?:いつも)?(?:大変)?お世話になって(?:おります|います)[。、]?"
    r"|こんにちは[。、!]?|こんばんは[。、!]?|おはようございます[。、!]?"
    r"|はじめまして[。、]?|初めまして[。、]?|失礼(?:いたし|し)ます[。、]?"
    r"|お忙しいところ(?:恐れ入りますが|すみませんが|申し訳ありませんが)?[、。]?"
    r"|(?:どうぞ|何卒)?(?:よろしく|宜しく)お願い(?:いたします|致します|します|申し上げます)[。!]?"
    r"|ありがとうございます[。!]?|ありがとうございました[。!]?"
    r")",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")


def _without_signature(text: str) -> str:
    for match in _SIGN_OFF.finditer(text):
        if len(text) - match.end() <= _SIGNATURE_CHARS:
            return text[: match.start()]
    return text


def clean(text: str) -> str:
    """`text` normalised (NFKC, lower case), masked, without greetings and signatures.

    Args:
        text: A customer's message as received.

    Returns:
        The request itself; empty when nothing but pleasantries and personal data was written.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = mask(text)
    text = _without_signature(text)
    text = _PLEASANTRIES.sub(" ", text)
    return _SPACE.sub(" ", text).strip()
