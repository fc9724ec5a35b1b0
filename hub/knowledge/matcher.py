"""Pure-logic Chinese FAQ matcher (no files, clocks or databases touched by ``match``).

Text -> NFKC/lower-case, punctuation dropped -> jieba tokens (hub/knowledge/tokenizer.py: brand/domain
words kept whole, stop words dropped, synonyms mapped to one canonical word) -> features = tokens
plus character bigrams of the joined tokens (paraphrases segmented differently still
meet).  One scorer, used by ``match`` and ``brute_force`` alike:

    score = 100 * (alpha * coverage + (1 - alpha) * indel)

coverage: share of the query's feature weight found in the text, a feature weighing
IDF (over entries) x a general-language prior (jieba word counts: 能/东西 weak,
发票/包邮 strong); indel: rapidfuzz normalised Indel similarity (= fuzz.ratio / 100)
of the joined tokens.  An entry scores as its best text (question or similar).
A confident score answers alone only when the match is also specific: the query's
tokens weigh at least ``MIN_INFO`` specific words, or it shares ``MIN_COVER`` of the
matched text's weight (可以吗/收到 meet a short FAQ's one generic word, no more).
``match`` only scores the <= ``max_candidates`` texts picked by an inverted index
(rarest query features first, bounded by ``posting_budget`` postings), pruned by
score bounds so that most of them never reach Python-level scoring.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Iterable

from rapidfuzz import process
from rapidfuzz.distance import Indel

from .tokenizer import Tokenizer

TIE = 0.5  # score points: a runner-up with another answer this close to the best is a tie (no auto-answer)


@dataclass(frozen=True)
class FaqEntry:
    """One FAQ: a standard question, its similar phrasings and the answer."""

    id: int
    question: str
    similar: tuple[str, ...]
    answer: str
    category: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class Match:
    """A scored FAQ (score 0..100); ``matched`` is the question/similar text that scored best;
    ``specific``: the query says enough, or covers enough of ``matched``, to be answered alone."""

    id: int
    question: str
    answer: str
    score: float
    matched: str
    specific: bool = True


@dataclass(frozen=True, slots=True)
class _Text:
    entry_id: int
    raw: str
    chars: str
    features: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Query:
    chars: str
    features: frozenset[str]
    weights: dict[str, float]
    mass: float
    info: float  # token weight over that of one word unique to one entry


def _features(tokens: list[str]) -> tuple[str, frozenset[str]]:
    chars = "".join(tokens)
    return chars, frozenset(tokens).union(chars[i : i + 2] for i in range(len(chars) - 1))


class FaqMatcher:
    """Incremental FAQ index; ``match`` does bounded work per query and no I/O.

    confident: top score from which a reply may be sent automatically; suggest: lowest
    score worth showing an agent (``match``'s default floor); alpha: coverage vs Indel
    weight; max_candidates / posting_budget: per-query work bounds of the index.
    """

    HEAVY = 0.3  # common features weighing >= this x the heaviest one: top-up
    POOL_FACTOR = 1.5  # slots topped up with them, x max_candidates
    MIN_INFO = 0.8  # a specific query: its tokens weigh >= this (1 = a rare word of one entry) ...
    MIN_COVER = 0.5  # ... or it has >= this share of the matched text's feature weight

    def __init__(
        self,
        tokenizer: Tokenizer,
        entries: Iterable[FaqEntry] = (),
        *,
        confident: float = 62.0,
        suggest: float = 35.0,
        alpha: float = 0.3,
        max_candidates: int = 200,
        posting_budget: int = 1000,
    ) -> None:
        if not 0.0 <= suggest <= confident <= 100.0 or not 0.0 < alpha < 1.0:
            raise ValueError("need 0 <= suggest <= confident <= 100 and 0 < alpha < 1")
        self.tokenizer = tokenizer
        self.confident = confident
        self.suggest = suggest
        self.alpha = alpha
        self.max_candidates = max_candidates
        self.posting_budget = posting_budget
        self._entries: dict[int, FaqEntry] = {}
        self._clear()
        for entry in entries:
            self.add(entry)

    def _clear(self) -> None:
        self._slots: dict[int, list[int]] = {}  # entry id -> text slots
        self._texts: dict[int, _Text] = {}  # slot -> text
        self._chars: dict[int, str] = {}  # slot -> scorer string
        self._postings: dict[str, set[int]] = {}  # feature -> slots
        self._df: dict[str, int] = {}  # feature -> indexed entries having it
        self._indexed = 0  # entries with at least one indexed text
        self._next_slot = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._entries

    def get(self, entry_id: int) -> FaqEntry | None:
        return self._entries.get(entry_id)

    def add(self, entry: FaqEntry) -> None:
        """Index a new entry; disabled entries are kept but never indexed."""
        if entry.id in self._entries:
            raise ValueError(f"FAQ {entry.id} already present; use replace()")
        self._entries[entry.id] = entry
        slots: list[int] = []
        self._slots[entry.id] = slots
        if not entry.enabled:
            return
        union: set[str] = set()
        for raw in (entry.question, *entry.similar):
            chars, feats = _features(self.tokenizer.tokens(raw))
            if not chars or chars in (self._chars[s] for s in slots):
                continue
            slot = self._next_slot
            self._next_slot += 1
            self._texts[slot] = _Text(entry.id, raw, chars, feats)
            self._chars[slot] = chars
            slots.append(slot)
            union |= feats
            for f in feats:
                self._postings.setdefault(f, set()).add(slot)
        for f in union:
            self._df[f] = self._df.get(f, 0) + 1
        self._indexed += bool(slots)

    def remove(self, entry_id: int) -> bool:
        """Drop an entry; False if it was not present."""
        if self._entries.pop(entry_id, None) is None:
            return False
        slots = self._slots.pop(entry_id)
        union: set[str] = set()
        for slot in slots:
            text = self._texts.pop(slot)
            del self._chars[slot]
            union |= text.features
            for f in text.features:
                posting = self._postings[f]
                posting.discard(slot)
                if not posting:
                    del self._postings[f]
        for f in union:
            self._df[f] -= 1
            if not self._df[f]:
                del self._df[f]
        self._indexed -= bool(slots)
        return True

    def replace(self, entry: FaqEntry) -> None:
        """Insert or update one entry (re-indexes only that entry)."""
        self.remove(entry.id)
        self.add(entry)

    def rebuild(self) -> None:
        """Re-index everything, e.g. after the tokenizer's dictionary changed."""
        entries = list(self._entries.values())
        self._entries.clear()
        self._clear()
        for entry in entries:
            self.add(entry)

    def match(self, text: str, top_k: int = 5, *, min_score: float | None = None) -> list[Match]:
        """Best entries with score >= min_score (default ``suggest``), best first."""
        query = self._query(text)
        if query is None or top_k <= 0:
            return []
        floor = self.suggest if min_score is None else min_score
        slots, accs, rest = self._candidates(query)
        if not slots:
            return []
        texts, chars, postings, weights = self._texts, self._chars, self._postings, query.weights
        cov_w = 100.0 * self.alpha / query.mass  # score = cov_w * shared weight + sim_w * indel
        sim_w = 100.0 * (1.0 - self.alpha)
        slack = cov_w * sum(weights[f] for f in rest)  # features not in accs add at most this
        # Phase 1: the best few candidates by coverage give a lower bound for the k-th score.
        firsts: dict[int, float] = {}
        for slot, acc in zip(slots[: 3 * top_k], accs):
            low = cov_w * acc + sim_w * Indel.normalized_similarity(query.chars, chars[slot])
            entry_id = texts[slot].entry_id
            firsts[entry_id] = max(low, firsts.get(entry_id, 0.0))
        kth = max(floor, sorted(firsts.values())[-top_k] if len(firsts) >= top_k else floor)
        # Phase 2: only candidates whose coverage and Indel can still reach kth (cut in C).
        need = (kth - slack - sim_w - 1e-4) / cov_w  # least shared weight that can make it
        reach = bisect.bisect_right(accs, -need, key=float.__neg__)  # accs are descending
        sims = process.extract(  # [(text, similarity, index)]
            query.chars, [chars[slot] for slot in slots[:reach]],
            scorer=Indel.normalized_similarity, processor=None, limit=None,
            score_cutoff=max(0.0, (kth - slack - cov_w * accs[0]) / sim_w - 1e-4),
        )
        lows = [cov_w * accs[i] + sim_w * sim for _, sim, i in sims]
        # Finalists, best lower bound first, completed with the features left out, until
        # no later text can reach the top k.
        finals: dict[int, tuple[float, int]] = {}  # entry -> (score, slot)
        kth = floor
        for j in sorted(range(len(lows)), key=lows.__getitem__, reverse=True):
            if lows[j] + slack + 1e-6 < kth:
                break
            slot = slots[sims[j][2]]
            score = lows[j] + cov_w * sum(weights[f] for f in rest if slot in postings[f])
            score = round(score, 6)
            entry_id = texts[slot].entry_id
            prev = finals.get(entry_id)
            if score >= floor - 1e-6 and (prev is None or score > prev[0]):
                finals[entry_id] = (score, slot)
                if len(finals) >= top_k:
                    kth = max(kth, sorted(v[0] for v in finals.values())[-top_k])
        # Exact scores for the finalists: the very floats brute_force computes.
        exact: dict[int, tuple[float, _Text]] = {}
        ranked = heapq.nsmallest(top_k + 2, finals.items(), key=lambda kv: (-kv[1][0], kv[0]))
        for entry_id, (_, slot) in ranked:
            score = self._score(query, texts[slot])
            if score >= floor:
                exact[entry_id] = (score, texts[slot])
        return self._top(query, exact, top_k)

    def brute_force(
        self, text: str, top_k: int = 5, *, min_score: float | None = None
    ) -> list[Match]:
        """The same scorer over every text of every indexed entry (benchmark reference)."""
        query = self._query(text)
        if query is None or top_k <= 0:
            return []
        floor = self.suggest if min_score is None else min_score
        best: dict[int, tuple[float, _Text]] = {}
        for text_ in self._texts.values():
            score = self._score(query, text_)
            prev = best.get(text_.entry_id)
            if score >= floor and (prev is None or score > prev[0]):
                best[text_.entry_id] = (score, text_)
        return self._top(query, best, top_k)

    def is_confident(self, matches: list[Match]) -> bool:
        """True when the best match is good enough, and specific, to answer automatically, and no other
        FAQ with another answer scores as well: "退货" ties 支持七天无理由退货吗 and 怎么申请退货, and the
        lower id answered; a tie goes to an agent with both as suggestions."""
        if not matches or matches[0].score < self.confident or not matches[0].specific:
            return False
        best = matches[0]
        return not any(m.score >= best.score - TIE and m.answer.strip() != best.answer.strip() for m in matches[1:])

    def _query(self, text: str) -> _Query | None:
        tokens = self.tokenizer.tokens(text)
        n = self._indexed
        if not tokens or not n:
            return None
        chars, feats = _features(tokens)
        prior, df_of = self.tokenizer.prior, self._df
        weights: dict[str, float] = {}
        for f in feats:
            df = df_of.get(f)
            if df:
                weights[f] = prior(f) * math.log(1.0 + n / df)
            elif f in tokens:  # unknown word: evidence of an off-topic query
                weights[f] = prior(f) * math.log(1.0 + n)
            # an unseen non-token bigram is segmentation noise: ignored
        if not weights:
            return None
        info = sum(weights.get(t, 0.0) for t in set(tokens)) / math.log(1.0 + n)
        return _Query(chars, frozenset(weights), weights, sum(weights.values()), info)

    def _score(self, query: _Query, text: _Text) -> float:
        weights = query.weights
        common = sum(weights[f] for f in query.features & text.features)
        score = self.alpha * common / query.mass
        score += (1.0 - self.alpha) * Indel.normalized_similarity(query.chars, text.chars)
        return round(100.0 * score, 6)  # rounded: float noise must not reorder ties

    def _candidates(self, query: _Query) -> tuple[list[int], list[float], list[str]]:
        """(slots, weight of the query features each contains (descending), left out).

        Postings of the rarest features are summed until ``posting_budget`` is spent.  Of
        the common features beyond it, the heavy ones (weight >= ``HEAVY`` x the heaviest)
        top up the slots that could still make the cut (at most ``POOL_FACTOR`` x
        ``max_candidates``); the light ones are left out and returned.
        """
        postings, weights = self._postings, query.weights
        feats = sorted((f for f in weights if f in postings), key=lambda f: len(postings[f]))
        acc: dict[int, float] = {}
        budget = self.posting_budget
        rest: list[str] = []
        for f in feats:
            posting, w = postings[f], weights[f]
            if not acc:
                if len(posting) > budget:  # only common features: take the budget's worth
                    posting = set(itertools.islice(posting, budget))
                acc = dict.fromkeys(posting, w)
                budget -= len(posting)
            elif len(posting) <= budget:
                budget -= len(posting)
                get = acc.get
                for slot in posting:
                    acc[slot] = get(slot, 0.0) + w
            else:
                rest.append(f)
        if not acc:
            return [], [], []
        cap = self.max_candidates
        heavy_w = self.HEAVY * max(weights.values())
        heavy = [f for f in rest if weights[f] >= heavy_w]
        if heavy:  # top up the slots that could still make the cut
            if len(acc) > cap:
                ranked = sorted(acc.items(), key=itemgetter(1), reverse=True)
                least = ranked[cap - 1][1] - sum(weights[f] for f in heavy) - 1e-9
                pool = bisect.bisect_right(ranked, -least, key=lambda kv: -kv[1])
                acc = dict(ranked[: min(pool, int(self.POOL_FACTOR * cap))])
            for f in heavy:
                w = weights[f]
                for slot in postings[f].intersection(acc):
                    acc[slot] += w
            rest = [f for f in rest if weights[f] < heavy_w]
        slots, accs = zip(*sorted(acc.items(), key=itemgetter(1), reverse=True)[:cap])
        return list(slots), list(accs), rest

    def _cover(self, query: _Query, text: _Text) -> float:
        """Share of the text's feature weight (prior x IDF) the query has too."""
        prior, df, n = self.tokenizer.prior, self._df, self._indexed
        weights = {f: prior(f) * math.log(1.0 + n / df[f]) for f in text.features}
        total = sum(weights.values())
        return sum(w for f, w in weights.items() if f in query.features) / total if total else 0.0

    def _top(self, query: _Query, best: dict[int, tuple[float, _Text]], top_k: int) -> list[Match]:
        ranked = heapq.nsmallest(top_k, best.items(), key=lambda kv: (-kv[1][0], kv[0]))
        out = []
        for eid, (score, text) in ranked:
            entry = self._entries[eid]
            specific = query.info >= self.MIN_INFO or self._cover(query, text) >= self.MIN_COVER
            out.append(Match(eid, entry.question, entry.answer, round(score, 2), text.raw, specific))
        return out
