"""Customer text made safe and comparable: personal data masked, pleasantries dropped, terms."""

from __future__ import annotations

from services.insights.text.cleaning import clean
from services.insights.text.glossary import CONCEPT_PREFIX, concepts
from services.insights.text.messages import customer_text
from services.insights.text.terms import terms


def features(text: str) -> list[str]:
    """What texts are compared by: their terms and the glossary concepts those terms name."""
    found = terms(text)
    return found + concepts(found)


__all__ = ["CONCEPT_PREFIX", "clean", "customer_text", "features", "terms"]
