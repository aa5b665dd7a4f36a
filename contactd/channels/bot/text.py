"""Search text in Chinese and English with one code path on every database (no I/O).

Tokens: Chinese runs become overlapping character bigrams (a run of one character stays a
unigram) — the CJK bigram method of Lucene's CJKAnalyzer, which needs no dictionary and
finds 退款 in 怎么申请退款 as well as in 退款多久到账; Latin words are lower-cased, stop
words dropped and Snowball-stemmed (refunds, refunding → refund). Text is NFKC-normalised
first, so full-width letters and digits match their ASCII forms.

Ranking: TF-IDF cosine similarity between the question and every variant of every entry
(an entry scores as its best variant). The score is in [0, 1], so one threshold means the
same thing for every knowledge base, short or long, and the bot can tell "answer",
"ask back with suggestions" and "nothing at all" apart. The index is built in memory from
the entries (thousands, not millions: well under a millisecond per query) and rebuilt
when they change.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import snowballstemmer

from contactd.channels.bot.models import Lang

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[{_CJK}]+|[a-z0-9]+")
_HAS_CJK = re.compile(rf"[{_CJK}]")
_HAS_LATIN = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2,}(?![A-Za-z0-9])")  # a word, not an id
# English words that carry no meaning for matching a question
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "did",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "so",
        "that",
        "the",
        "their",
        "them",
        "there",
        "these",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "im",
        "i'm",
        "can't",
        "cannot",
        "get",
        "got",
        "want",
        "need",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
    ]
)
# Chinese particles and question words that carry no topic: they split a run like
# punctuation does (怎么申请退款 → 申请退款)
_CJK_PARTICLES = re.compile("(?:[的了吗呢吧啊呀嘛哦哈]|请问|可以|怎么|什么|一下|能不能)+")
_stemmer = snowballstemmer.stemmer("english")


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def tokens(text: str) -> list[str]:
    out: list[str] = []
    for run in _RUN.findall(normalize(text)):
        if _HAS_CJK.match(run):
            for part in _CJK_PARTICLES.split(run):
                if len(part) == 1:
                    out.append(part)
                out.extend(a + b for a, b in itertools.pairwise(part))
        elif run not in _STOP:
            out.append(str(_stemmer.stemWord(run)))
    return out


def language(text: str) -> Lang | None:
    """ "zh" when the text has Chinese characters, "en" when it has only Latin letters,
    None when it has neither (an order number, an emoji)."""
    if _HAS_CJK.search(text):
        return "zh"
    if _HAS_LATIN.search(text):
        return "en"
    return None


def contains_phrase(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text``: as a substring for Chinese, as whole words for
    English (so "agent" matches "an agent please" but not "agentic")."""
    t, p = normalize(text), normalize(phrase).strip()
    if not p:
        return False
    if _HAS_CJK.search(p):
        return p in t
    return re.search(rf"(?<![a-z0-9]){re.escape(p)}(?![a-z0-9])", t) is not None


@dataclass(frozen=True)
class Hit:
    key: int
    score: float
    variant: str


class TfIdfIndex:
    """Documents are (key, text) pairs; several documents may share a key (the variants
    of one entry) and a key scores as its best document."""

    def __init__(self, docs: Iterable[tuple[int, str]]) -> None:
        self._docs: list[tuple[int, str, dict[str, float]]] = []
        counted = [(key, text, Counter(tokens(text))) for key, text in docs]
        df: Counter[str] = Counter()
        for _, _, tf in counted:
            df.update(tf.keys())
        n = len(counted)
        self._idf = {t: math.log((1 + n) / (1 + c)) + 1.0 for t, c in df.items()}
        # a word no entry has lowers the similarity (weighed at 30% of the rarest word, so
        # the filler of a chatty question does not drown its point)
        self._unseen = 0.3 * (math.log(1 + n) + 1.0)
        self._postings: dict[str, list[int]] = {}
        for key, text, tf in counted:
            vec = self._weigh(tf)
            if not vec:
                continue
            for t in vec:
                self._postings.setdefault(t, []).append(len(self._docs))
            self._docs.append((key, text, vec))

    def __len__(self) -> int:
        return len(self._docs)

    def _weigh(self, tf: Counter[str]) -> dict[str, float]:
        vec = {t: (1 + math.log(c)) * self._idf.get(t, self._unseen) for t, c in tf.items()}
        vec = {t: w for t, w in vec.items() if w > 0}
        norm = math.sqrt(sum(w * w for w in vec.values()))
        return {t: w / norm for t, w in vec.items()} if norm else {}

    def search(self, query: str, limit: int = 5) -> list[Hit]:
        """Best first, at most one hit per key; only documents sharing a token."""
        qvec = self._weigh(Counter(tokens(query)))
        scores: dict[int, float] = {}
        for t, w in qvec.items():
            for i in self._postings.get(t, ()):
                scores[i] = scores.get(i, 0.0) + w * self._docs[i][2][t]
        best: dict[int, Hit] = {}
        for i, score in scores.items():
            key, text, _ = self._docs[i]
            if key not in best or score > best[key].score:
                best[key] = Hit(key, min(score, 1.0), text)
        ranked = sorted(best.values(), key=lambda h: (-h.score, h.key))
        return ranked[:limit]
