"""The terms of a message: content words, Japanese by SudachiPy, English by a word pattern."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from services.insights.text.cleaning import clean
from services.insights.text.masking import MASKS
from services.insights.text.stopwords import ENGLISH, JAPANESE

if TYPE_CHECKING:
    from sudachipy import Tokenizer

# Sudachi refuses inputs over ~49 KB; a customer message longer than this is not a question.
MAX_CHARS = 4000
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff66-\uff9f]")
_LONGEST_WORD = 30
_ENGLISH_WORD = re.compile(r"[a-z][a-z'-]*[a-z]")
_KANJI = re.compile(r"[\u3400-\u9fff]")
_MASK = re.compile("|".join(re.escape(m) for m in MASKS))
# Parts of speech that carry what a message is about (Sudachi's first two levels).
_CONTENT = {"名詞", "動詞", "形容詞"}
# Second and third levels that never do: numerals, auxiliaries, times, counters, and the
# names of people and places — those are personal data.
_FUNCTION = {"数詞", "代名詞", "副詞可能", "助数詞可能", "人名", "地名", "姓", "名"}


@functools.cache
def _tokenizer() -> Tokenizer:
    # The dictionary ships inside the sudachidict-core wheel: nothing is downloaded.
    from sudachipy import Dictionary, SplitMode

    return Dictionary(dict="core").tokenizer(SplitMode.C)


def _english(word: str) -> str | None:
    word = word.removesuffix("'s").replace("'", "")
    # Longer than any English word: a token, a hash, a pasted key — never a subject.
    if not 3 <= len(word) <= _LONGEST_WORD or word in ENGLISH:
        return None
    # Plurals folded so "charges" and "charge" are one term; other inflections are kept.
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("ches", "shes", "sses", "xes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        word = word[:-1]
    return None if word in ENGLISH else word


def _japanese(text: str) -> list[str]:
    found: list[str] = []
    for morpheme in _tokenizer().tokenize(text):
        pos = morpheme.part_of_speech()
        surface = morpheme.surface()
        if surface.isascii():
            found.extend(t for w in _ENGLISH_WORD.findall(surface) if (t := _english(w)))
            continue
        if pos[0] not in _CONTENT or _FUNCTION.intersection(pos[1:4]):
            continue
        # Dependent nouns (こと, ため) never carry a subject; dependent verbs (忘れる, 遅れる)
        # often do, and the stop list drops the auxiliaries among them.
        if pos[0] == "名詞" and pos[1] == "非自立可能":
            continue
        term = morpheme.normalized_form()
        # A lone kana is a fragment; a lone kanji (箱, 肌, 薬) can be the whole subject.
        if term in JAPANESE or (len(term) == 1 and not _KANJI.match(term)):
            continue
        found.append(term)
    return found


def terms(text: str) -> list[str]:
    """The content words of a customer's message, in order, repeats kept.

    The text is cleaned first (see `clean`): personal data and digits never become terms.

    Args:
        text: A message as received, in Japanese, English or both.

    Returns:
        Lower-case English words (plurals folded) and Japanese words in Sudachi's normalised
        form (届か → 届く, ｷｬﾝｾﾙ → キャンセル); empty when nothing is left.
    """
    cleaned = _MASK.sub(" ", clean(text[:MAX_CHARS]))
    if _JAPANESE.search(cleaned):
        return _japanese(cleaned)
    return [t for w in _ENGLISH_WORD.findall(cleaned) if (t := _english(w))]
