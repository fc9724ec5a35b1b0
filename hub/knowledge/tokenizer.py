"""Chinese text -> FAQ tokens: NFKC/lower-case with punctuation dropped, then an own jieba instance
with brand/domain words kept whole, stop words dropped and synonyms mapped to one canonical word;
``Tokenizer.prior`` weighs a feature by its rarity in general language (jieba's word counts).
Pure logic, used by the matcher (hub/knowledge/matcher.py).
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from typing import Iterable

import jieba

jieba.setLogLevel(logging.WARNING)

# Particles, pronouns, politeness and question words: no topic.  Words such as
# 多久/哪里/怎么办/可以 are kept: they help tell FAQs apart.
STOP_WORDS: frozenset[str] = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 哦 嘛 么 哈 啦 嗯 哎 喔 噢 哇 诶 滴 地 得 着 过 之 与 及 和 跟 或
    我 你 您 他 她 它 我们 你们 他们 咱们 人家 自己 俺
    请问 请 问 问下 问一下 一下 下 麻烦 谢谢 你好 您好 在吗 亲 亲亲 小姐姐
    怎么 怎样 怎么样 如何 咋 啥 什么 那个 这个 这 那 这样 那样 就 都 也 还 又 再 才
    是 是不是 有没有 能不能 可不可以 会不会 要不要 一个 一些 些 个 想 要 想要 需要 应该
    """.split()
)

# E-commerce / cosmetics / mother-and-baby words jieba would split.
DOMAIN_WORDS: tuple[str, ...] = (
    "敏感肌", "以旧换新", "色号", "正装", "小样", "空瓶", "价保", "运费险", "专票", "包邮",
    "七天无理由", "肤质", "晒单", "福袋", "直播间", "领券", "护臀膏", "尿不湿", "奶嘴",
)

# Everyday e-commerce synonyms, "canonical variant ..." groups split by "|"
# (extend with Tokenizer.add_synonyms).
DEFAULT_SYNONYMS: tuple[tuple[str, ...], ...] = tuple(
    tuple(group.split())
    for group in """
    包邮 免运费 免邮 免邮费 不要运费 | 运费 邮费 快递费 运费钱
    快递 物流 包裹 快件 快递员 顺丰 圆通 中通 申通 韵达 邮政 ems
    发货 发出 寄出 出库 发走 | 下单 拍下 拍了 下了单 购买 | 取消 撤销 撤回
    退款 退钱 钱退 | 价保 价格保护 保价 | 正品 真货 真品 正货
    假货 仿品 山寨 高仿 | 男生 男士 男性 男人 老公 男朋友
    孕妇 孕期 怀孕 孕妈 准妈妈 | 哺乳期 喂奶 哺乳 母乳期
    宝宝 婴儿 小孩 宝贝 婴幼儿 儿童 | 纸尿裤 尿不湿 尿片
    优惠券 券 卷 代金券 红包 | 用不了 用不上 不能用 无法使用 不可用 用不掉
    人工 真人 人工客服 | 多久 多长时间 多少天 几天 | 多少钱 几块钱 多少元 几块
    什么时候 啥时候 何时 哪天 几号 | 到账 到帐
    门店 实体店 专柜 线下店 店里 到店 | 线上 网上 网店 小程序
    过期 失效 清零 清空 作废 | 有效期 期限 使用期限 | 抵扣 抵 抵用 抵现
    专票 专用发票 增值税专用发票 | 破损 压坏 碎 裂 摔坏 坏 | 酒精 乙醇
    香精 香料 香味 | 过敏 红肿 刺痛 泛红 起疹子 发痒 痒 | 补货 上架 有货 到货
    赠品 小样 赠送 送的 | 价格 价钱 价位
    开封 拆封 打开 拆开 拆掉 拆了 开盖 开了封 开过封
    偏远地区 偏远 新疆 西藏 青海 内蒙古 内蒙 宁夏 甘肃
    海外 国外 境外 港澳台 香港 澳门 台湾 美国 日本 韩国 英国 加拿大 澳洲 澳大利亚 新加坡 马来西亚
    换货 调换 更换 | 修改 更改 改成 变更 | 领取 领 拿
    """.replace("\n", "|").split("|")
    if group.strip()
)

# prior = clamp((ln(total / freq) - LOW) / SPAN, FLOOR, 1); non-word bigrams: SCALE x char prior
PRIOR_FLOOR, PRIOR_LOW, PRIOR_SPAN, BIGRAM_SCALE = 0.15, 6.0, 8.0, 0.6

_NON_WORD = re.compile(r"[\W_]+")


def normalize(text: str) -> str:
    """Full-width -> half-width (NFKC), lower-case, punctuation/whitespace -> single spaces."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


class Tokenizer:
    """Own jieba instance (not the global one) + normalisation, stop words, synonyms."""

    WORD_FREQ = 100_000  # far above common words, so brand words stay whole

    def __init__(
        self,
        words: Iterable[str] = (),
        *,
        synonyms: Iterable[Iterable[str]] = DEFAULT_SYNONYMS,
        stop_words: Iterable[str] | None = None,
    ) -> None:
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()  # eager: ~0.6 s, once at app start
        self.stop_words = frozenset(STOP_WORDS if stop_words is None else stop_words)
        self._brand: set[str] = set()
        self._own_freq: dict[str, int] = {}  # brand word -> its jieba frequency before (0: none)
        self._canon: dict[str, str] = {}
        self._prior: dict[str, float] = {}
        self._log_total = math.log(self._jieba.total)
        self.add_words(DOMAIN_WORDS)
        self.add_synonyms(synonyms)
        self._keep_whole(self.stop_words)  # 在吗/会不会 are cut 在+吗/会+不会 and would not be dropped
        self.add_words(words)

    def _keep_whole(self, words: Iterable[str]) -> None:
        """Have jieba cut each word whole, at the least frequency that does it."""
        for word in words:
            if len(word) > 1 and self._jieba.lcut(word, HMM=False) != [word]:
                self._jieba.suggest_freq(word, tune=True)

    def add_words(self, words: Iterable[str]) -> None:
        """Brand dictionary (product names, 敏感肌, 以旧换新 ...): kept as whole tokens.

        Entries indexed before the call keep their old tokens: ``FaqMatcher.rebuild()``.
        """
        for word in words:
            word = normalize(word).replace(" ", "")
            if word:
                if word not in self._brand:
                    self._own_freq[word] = self._jieba.FREQ.get(word, 0)
                self._jieba.add_word(word, freq=self.WORD_FREQ)
                self._brand.add(word)
        self._prior.clear()

    def remove_words(self, words: Iterable[str]) -> None:
        """Take words out of the brand dictionary (the built-in domain words stay whole); a word
        jieba knew (顺丰, 发货) gets its own frequency back, any other is no word again."""
        domain = {normalize(w).replace(" ", "") for w in DOMAIN_WORDS}
        for word in words:
            word = normalize(word).replace(" ", "")
            if word and word in self._brand and word not in domain:
                freq = self._own_freq.pop(word, 0)
                if freq:
                    self._jieba.add_word(word, freq)
                else:
                    self._jieba.del_word(word)
                self._brand.discard(word)
        self._prior.clear()

    def add_synonyms(self, groups: Iterable[Iterable[str]]) -> None:
        """Map every word of each group to the group's first (canonical) word."""
        for group in groups:
            words = [w for w in (normalize(g).replace(" ", "") for g in group) if w]
            for word in words:
                if len(word) > 1 and word not in self._brand:
                    self._jieba.suggest_freq(word, tune=True)  # keep the word whole
                if word != words[0]:
                    self._canon[word] = words[0]
        self._prior.clear()

    def tokens(self, text: str) -> list[str]:
        """Normalised, canonical tokens without punctuation, whitespace or stop words."""
        norm = normalize(text)
        if not norm:
            return []
        stop, canon = self.stop_words, self._canon
        return [canon.get(t, t) for t in self._jieba.lcut(norm, HMM=False)
                if t != " " and t not in stop]

    def prior(self, feature: str) -> float:
        """Weight in [PRIOR_FLOOR, 1] from general-language rarity (memoised)."""
        got = self._prior.get(feature)
        if got is None:
            if len(self._prior) > 500_000:  # memo only: keep it bounded
                self._prior.clear()
            freq = self._jieba.FREQ.get(feature)
            if feature in self._brand:
                got = 1.0
            elif freq or len(feature) == 1:  # a word: its rarity in general text
                info = self._log_total - math.log(freq or 1)
                got = min(1.0, max(PRIOR_FLOOR, (info - PRIOR_LOW) / PRIOR_SPAN))
            else:  # a non-word bigram: its rarer character, scaled down
                got = BIGRAM_SCALE * max(self.prior(c) for c in feature)
            self._prior[feature] = got
        return got
