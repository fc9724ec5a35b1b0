"""Quality and behaviour tests for the pure Chinese FAQ matcher."""

from __future__ import annotations

import builtins
import json
import time
from pathlib import Path

import pytest

from hub.knowledge.matcher import FaqEntry, FaqMatcher, Match
from hub.knowledge.tokenizer import Tokenizer

FIXTURES = Path(__file__).parent / "fixtures"
BRAND_WORDS = ("修护精华", "舒缓面霜", "氨基酸洁面", "防晒乳", "婴儿润肤乳")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(BRAND_WORDS)


@pytest.fixture(scope="module")
def entries() -> list[FaqEntry]:
    raw = json.loads((FIXTURES / "faq_zh.json").read_text(encoding="utf-8"))
    return [
        FaqEntry(i, e["question"], tuple(e["similar"]), e["answer"], e["category"])
        for i, e in enumerate(raw, start=1)
    ]


@pytest.fixture(scope="module")
def queries() -> dict:
    return json.loads((FIXTURES / "faq_queries_zh.json").read_text(encoding="utf-8"))


@pytest.fixture
def matcher(tokenizer: Tokenizer, entries: list[FaqEntry]) -> FaqMatcher:
    return FaqMatcher(tokenizer, entries)


def by_question(entries: list[FaqEntry], question: str) -> FaqEntry:
    return next(e for e in entries if e.question == question)


def test_fixture_sizes(entries: list[FaqEntry], queries: dict) -> None:
    assert len(entries) >= 60
    assert len(queries["paraphrases"]) >= 80
    assert len(queries["off_topic"]) >= 20
    questions = {e.question for e in entries}
    texts = {t for e in entries for t in (e.question, *e.similar)}
    for p in queries["paraphrases"]:
        assert p["expect_question"] in questions
        assert p["query"] not in texts, "a paraphrase must not copy an FAQ text"


def test_paraphrase_top1_accuracy(matcher: FaqMatcher, queries: dict) -> None:
    paraphrases = queries["paraphrases"]
    misses = []
    for p in paraphrases:
        got = matcher.match(p["query"], top_k=3, min_score=0)
        if not got or got[0].question != p["expect_question"]:
            misses.append((p["query"], p["expect_question"], [(m.question, m.score) for m in got]))
    accuracy = 1 - len(misses) / len(paraphrases)
    print(f"\ntop-1 accuracy {accuracy:.3f} ({len(paraphrases) - len(misses)}/{len(paraphrases)})")
    for query, want, got in misses:
        print(f"  MISS {query!r}: want {want!r}, got {got}")
    assert accuracy >= 0.90


def test_off_topic_never_confident(matcher: FaqMatcher, queries: dict) -> None:
    for query in queries["off_topic"]:
        assert not matcher.is_confident(matcher.match(query)), query
        assert not matcher.is_confident(matcher.match(query, min_score=0)), query


def test_confident_matches_are_correct(matcher: FaqMatcher, queries: dict) -> None:
    confident = 0
    for p in queries["paraphrases"]:
        got = matcher.match(p["query"])
        if matcher.is_confident(got):
            confident += 1
            assert got[0].question == p["expect_question"], p["query"]
    print(f"\nconfident on {confident}/{len(queries['paraphrases'])} paraphrases")
    assert confident >= len(queries["paraphrases"]) // 5


def test_exact_question_is_confident(matcher: FaqMatcher, entries: list[FaqEntry]) -> None:
    for entry in entries:
        got = matcher.match(entry.question)
        assert got[0].id == entry.id and got[0].score == 100.0
        assert got[0].matched == entry.question
        assert matcher.is_confident(got)


def test_match_result_shape(matcher: FaqMatcher, entries: list[FaqEntry]) -> None:
    got = matcher.match("快递几天能到", top_k=3, min_score=0)
    assert 1 <= len(got) <= 3
    assert all(isinstance(m, Match) and 0 <= m.score <= 100 for m in got)
    assert [m.score for m in got] == sorted((m.score for m in got), reverse=True)
    assert len({m.id for m in got}) == len(got)
    for m in got:
        entry = next(e for e in entries if e.id == m.id)
        assert m.matched in (entry.question, *entry.similar)
        assert (m.question, m.answer) == (entry.question, entry.answer)
    assert all(m.score >= matcher.suggest for m in matcher.match("快递几天能到"))


def test_brute_force_agrees_with_match(matcher: FaqMatcher, queries: dict) -> None:
    paraphrases = [p["query"] for p in queries["paraphrases"]]
    for text in paraphrases + queries["off_topic"]:
        # Everything at or above the suggest threshold: identical lists and scores.
        assert matcher.match(text, top_k=5) == matcher.brute_force(text, top_k=5), text
    for text in paraphrases:
        # Without a floor the best entry is the same too (lower ranks may differ: texts
        # sharing no feature with the query are never candidates, they score ~0-20).
        assert matcher.match(text, min_score=0)[0] == matcher.brute_force(text, min_score=0)[0]


@pytest.mark.parametrize("text", ["", "   ", "？？？", "!!!", "。，、；……", "😀😀", "\n\t"])
def test_empty_and_punctuation_queries(
    matcher: FaqMatcher, tokenizer: Tokenizer, text: str
) -> None:
    assert tokenizer.tokens(text) == []
    assert matcher.match(text) == []
    assert matcher.brute_force(text) == []
    assert not matcher.is_confident(matcher.match(text))


def test_stop_words_only_query(matcher: FaqMatcher) -> None:
    assert matcher.match("请问一下你们的吗") == []


def test_brand_dictionary_keeps_words_whole(tokenizer: Tokenizer) -> None:
    assert "敏感肌" in tokenizer.tokens("我是敏感肌，可以用吗？")
    assert "以旧换新" in tokenizer.tokens("以旧换新活动怎么参加")
    assert "修护精华" in tokenizer.tokens("修护精华孕妇能用吗")
    tokenizer.add_words(["焕颜精粹水"])
    assert "焕颜精粹水" in tokenizer.tokens("焕颜精粹水怎么用")


def test_normalisation(tokenizer: Tokenizer) -> None:
    assert tokenizer.tokens("ＶＩＰ会员！！") == tokenizer.tokens("vip会员")
    assert tokenizer.tokens("敏感肌，可以用吗？") == tokenizer.tokens("敏感肌可以用吗")
    assert all(t not in {"的", "吗", "请问", "我"} for t in tokenizer.tokens("请问我的快递到哪了吗"))
    assert tokenizer.tokens("免运费吗") == tokenizer.tokens("包邮吗")  # synonym canonicalised


def test_incremental_add_remove_replace(tokenizer: Tokenizer, entries: list[FaqEntry]) -> None:
    matcher = FaqMatcher(tokenizer, entries[:40])
    extra = entries[40:]
    for entry in extra:
        matcher.add(entry)
    target = by_question(entries, "以旧换新怎么参加？")
    assert matcher.match("空瓶回收活动怎么参加")[0].id == target.id

    new = FaqEntry(999, "可以用支付宝付款吗？", ("支持支付宝吗", "能用花呗吗"), "暂不支持支付宝。", "支付")
    assert all(m.id != 999 for m in matcher.match("能用支付宝付钱吗"))
    matcher.add(new)
    assert matcher.match("能用支付宝付钱吗")[0].id == 999
    with pytest.raises(ValueError):
        matcher.add(new)

    matcher.replace(FaqEntry(999, "可以货到付款吗？", ("支持货到付款吗",), "不支持货到付款。", "支付"))
    old_texts = {new.question, *new.similar}
    assert all(m.matched not in old_texts for m in matcher.match("支持支付宝吗", min_score=0))
    assert matcher.match("能货到付款吗")[0].id == 999

    assert matcher.remove(999) and not matcher.remove(999)
    assert 999 not in matcher and all(m.id != 999 for m in matcher.match("能货到付款吗"))

    # After all that churn the index (postings, document frequencies) equals a fresh build.
    fresh = FaqMatcher(tokenizer, entries)
    for text in ("快递几天能到", "退款多久到账", "敏感肌能用吗", "积分会清零吗", "能开专票吗"):
        assert matcher.match(text, min_score=0) == fresh.match(text, min_score=0)


def test_disabled_entries_never_match(matcher: FaqMatcher, entries: list[FaqEntry]) -> None:
    entry = by_question(entries, "怎么开发票？")
    disabled = FaqEntry(
        entry.id, entry.question, entry.similar, entry.answer, entry.category, enabled=False
    )
    matcher.replace(disabled)
    assert matcher.get(entry.id) == disabled
    for text in (entry.question, *entry.similar):
        assert all(m.id != entry.id for m in matcher.match(text, min_score=0))
        assert all(m.id != entry.id for m in matcher.brute_force(text, min_score=0))
    matcher.replace(entry)
    assert matcher.match(entry.question)[0].id == entry.id


def test_rebuild_keeps_results(matcher: FaqMatcher) -> None:
    before = matcher.match("退货运费谁出", min_score=0)
    matcher.rebuild()
    assert matcher.match("退货运费谁出", min_score=0) == before


def test_thresholds_validated(tokenizer: Tokenizer) -> None:
    with pytest.raises(ValueError):
        FaqMatcher(tokenizer, confident=30, suggest=50)


def test_match_reads_no_clock_or_file(matcher: FaqMatcher, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("match must not do I/O or read clocks")

    for name in ("time", "monotonic", "perf_counter", "time_ns", "monotonic_ns"):
        monkeypatch.setattr(time, name, forbidden)
    monkeypatch.setattr(builtins, "open", forbidden)
    assert matcher.match("敏感肌可以用吗")[0].question == "敏感肌可以用吗？"
    assert matcher.brute_force("退款多久到账")
