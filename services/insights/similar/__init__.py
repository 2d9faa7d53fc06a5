"""What solved it last time: resolved cases like an open one, and knowledge article search."""

from __future__ import annotations

from services.insights.similar.cases import CaseIndex, ResolvedCase
from services.insights.similar.knowledge import Article, KnowledgeBase

__all__ = ["Article", "CaseIndex", "KnowledgeBase", "ResolvedCase"]
