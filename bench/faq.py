"""Benchmark the FAQ matcher: candidate-index ``match`` vs ``brute_force``.

Generates a synthetic but realistic Chinese FAQ (product x topic questions, two
similar questions each), then times ``match(q, top_k=5)`` (tokenising included)
and ``brute_force`` (same scorer over every text) on paraphrase-like queries plus
random text.  Prints human-readable lines, then one JSON line last.

    python bench/faq.py            # 10,000 entries
    python bench/faq.py --quick    # smaller scale, < 45 s
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.knowledge.matcher import FaqEntry, FaqMatcher  # noqa: E402
from hub.knowledge.tokenizer import Tokenizer  # noqa: E402

SERIES = (
    "水光", "舒缓", "修护", "焕亮", "紧致", "净透", "柔润", "清爽", "滋养", "嫩肤",
    "抗皱", "美白", "控油", "保湿", "温和", "氨基酸", "玻尿酸", "烟酰胺", "维C", "视黄醇",
)
KINDS = (
    "精华", "面霜", "乳液", "爽肤水", "洁面乳", "面膜", "眼霜", "防晒霜", "卸妆油", "身体乳",
    "护手霜", "唇膏", "洗发水", "沐浴露", "润肤乳", "纸尿裤", "奶瓶", "湿巾", "护臀膏", "爽身粉",
    "喷雾", "精华油", "安瓶", "冻干粉", "素颜霜",
)
# Topic templates: the first is the standard question, the rest are phrasings
# (two become similar questions, the others are only used to build queries).
TOPICS: tuple[tuple[str, ...], ...] = (
    ("{p}敏感肌可以用吗", "{p}适合敏感肌吗", "皮肤敏感能用{p}吗", "敏感肌用{p}会刺激吗"),
    ("{p}孕妇能用吗", "怀孕期间可以用{p}吗", "{p}孕期能不能用", "哺乳期用{p}安全吗"),
    ("{p}保质期多久", "{p}能放多久", "{p}过期时间怎么看", "{p}没开封能保存几年"),
    ("{p}开封后多久要用完", "{p}打开以后能放多久", "{p}开封保质期是多久", "拆开的{p}多久用掉"),
    ("{p}怎么使用", "{p}的用法是什么", "{p}用量多少合适", "{p}正确的使用方法"),
    ("{p}什么时候补货", "{p}卖完了还会有吗", "{p}断货了什么时候到", "{p}缺货多久能补上"),
    ("{p}支持以旧换新吗", "{p}空瓶可以换新吗", "{p}能参加以旧换新活动吗", "用完的{p}瓶子能回收吗"),
    ("{p}含有酒精吗", "{p}有没有添加酒精", "{p}是无酒精配方吗", "{p}里有乙醇吗"),
    ("{p}有香精吗", "{p}是无香的吗", "{p}添加香料了吗", "{p}味道是香精调的吗"),
    ("{p}的主要成分是什么", "{p}里面有什么成分", "{p}的配方有哪些", "{p}核心成分是什么"),
    ("{p}多少钱", "{p}什么价格", "{p}售价是多少", "{p}现在卖多少钱"),
    ("{p}有小样吗", "{p}可以申请试用装吗", "{p}有没有旅行装", "买{p}送不送小样"),
    ("{p}男生可以用吗", "{p}适合男士吗", "男朋友能用{p}吗", "{p}男女通用吗"),
    ("{p}用了过敏怎么办", "用{p}脸发红发痒", "擦了{p}起疹子", "{p}用完刺痛泛红怎么处理"),
    ("{p}和之前的版本有什么区别", "{p}新版旧版不一样吗", "{p}升级了什么", "{p}换配方了吗"),
    ("{p}可以和其他产品一起用吗", "{p}能叠加别的产品吗", "{p}和精华能混用吗", "{p}搭配什么产品好"),
    ("{p}有赠品吗", "买{p}送什么", "{p}的赠品什么时候发", "{p}买赠活动还有吗"),
    ("{p}什么时候发货", "{p}下单后多久发", "{p}几天能发出", "{p}付款后多久发货"),
    ("{p}可以退货吗", "{p}不想要了能退吗", "{p}拆封了还能退吗", "{p}支持七天无理由吗"),
    ("{p}在门店能买到吗", "实体店有{p}吗", "{p}专柜有卖吗", "线下门店有没有{p}"),
    ("{p}直播间有优惠吗", "{p}直播专属价是多少", "直播间买{p}更便宜吗", "{p}今晚直播有福利吗"),
    ("{p}能用优惠券吗", "{p}可以用券吗", "买{p}优惠券用不了", "{p}能叠加满减吗"),
    ("{p}是正品吗", "怎么辨别{p}真假", "{p}防伪码在哪", "{p}会不会是假货"),
    ("{p}适合什么肤质", "干皮能用{p}吗", "油皮适合{p}吗", "混合皮可以用{p}吗"),
    ("{p}宝宝可以用吗", "婴儿能用{p}吗", "{p}几个月的宝宝能用", "新生儿可以用{p}吗"),
    ("{p}夏天用会油腻吗", "{p}质地厚重吗", "{p}油不油", "{p}用完黏不黏"),
    ("{p}可以带上飞机吗", "{p}能托运吗", "坐飞机能带{p}吗", "{p}符合登机液体规定吗"),
    ("{p}可以放冰箱吗", "{p}怎么保存", "{p}需要冷藏吗", "{p}怕晒吗"),
    ("{p}有几种规格", "{p}有大瓶装吗", "{p}容量是多少", "{p}有没有小瓶的"),
    ("{p}可以开发票吗", "买{p}能开票吗", "{p}的发票怎么开", "{p}能开专票吗"),
    ("{p}能积分兑换吗", "{p}可以用积分换吗", "积分能抵扣{p}吗", "{p}兑换需要多少积分"),
    ("{p}生产日期在哪里", "{p}批号在哪看", "{p}瓶底的数字是什么意思", "{p}限用日期怎么看"),
    ("{p}有防腐剂吗", "{p}含防腐剂吗", "{p}是无防腐剂配方吗", "{p}添加了尼泊金酯吗"),
    ("{p}可以天天用吗", "{p}每天都能用吗", "{p}一周用几次", "{p}能早晚都用吗"),
    ("{p}能美白吗", "{p}有美白效果吗", "{p}用多久能提亮", "{p}淡斑有用吗"),
    ("{p}痘痘肌能用吗", "长痘可以用{p}吗", "{p}会闷痘吗", "{p}会不会长闭口"),
    ("{p}包邮吗", "买{p}需要运费吗", "{p}满多少包邮", "单买{p}包不包邮"),
    ("{p}有礼盒装吗", "{p}能包装成礼物吗", "{p}送人有礼袋吗", "{p}节日礼盒什么时候上"),
    ("{p}能用多久", "一瓶{p}能用几个月", "{p}用量大吗", "{p}一支能用多长时间"),
    ("{p}在哪里生产", "{p}是国产的吗", "{p}产地是哪里", "{p}是哪个工厂做的"),
)
FILLERS_BEFORE = ("", "", "你好，", "请问", "亲，", "想问下", "我想知道", "客服，")
FILLERS_AFTER = ("", "", "？", "呀", "啊", "呢", "，谢谢", "，急")
RANDOM_TEXT = (
    "今天天气怎么样", "帮我写一首诗", "附近有什么好吃的", "股票明天会涨吗", "你是机器人吗",
    "哈哈哈哈哈", "明天要下雨吗", "推荐一部电影", "我家猫不吃饭", "高铁票怎么改签",
)
COMMON_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动"
    "同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自"
    "二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日"
    "那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变"
    "条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指"
    "几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器"
    "压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安"
    "场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集"
    "温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连"
    "断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精"
    "值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属"
    "圆包火住调满县局照参红细引听该铁价严"
)


def build_entries(
    n: int, rng: random.Random
) -> tuple[list[FaqEntry], dict[int, list[str]], list[str]]:
    """n entries (product x topic); returns entries, held-out phrasings per id, product names."""
    products = [s + k for s in SERIES for k in KINDS]
    combos = [(p, t) for p in range(len(products)) for t in range(len(TOPICS))]
    if n > len(combos):
        raise SystemExit(f"at most {len(combos)} entries")
    rng.shuffle(combos)
    entries, held = [], {}
    for i, (p, t) in enumerate(combos[:n], start=1):
        forms = [f.format(p=products[p]) for f in TOPICS[t]]
        rest = forms[1:]
        rng.shuffle(rest)
        answer = f"答案{i}：关于{forms[0]}的说明。"
        entries.append(FaqEntry(i, forms[0], tuple(rest[:2]), answer, f"topic{t}"))
        held[i] = rest[2:]
    return entries, held, products


def make_queries(entries: list[FaqEntry], held: dict[int, list[str]], count: int,
                 rng: random.Random) -> list[str]:
    """~85% paraphrase-like variants of existing questions, ~15% random text."""
    queries = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.15:
            if rng.random() < 0.5:
                queries.append(rng.choice(RANDOM_TEXT))
            else:
                queries.append("".join(rng.choice(COMMON_CHARS) for _ in range(rng.randint(4, 14))))
            continue
        entry = rng.choice(entries)
        if roll < 0.55 and held[entry.id]:
            base = rng.choice(held[entry.id])  # unseen phrasing of the same question
        else:
            base = rng.choice((entry.question, *entry.similar))
            if len(base) > 5 and rng.random() < 0.5:  # typo-like: drop one character
                cut = rng.randrange(len(base))
                base = base[:cut] + base[cut + 1 :]
        queries.append(rng.choice(FILLERS_BEFORE) + base + rng.choice(FILLERS_AFTER))
    return queries


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller scale (< 45 s)")
    ap.add_argument("--entries", type=int, default=None)
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--brute", type=int, default=None, help="queries also run through brute_force")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    n = args.entries or (4000 if args.quick else 10_000)
    n_queries = args.queries or (2000 if args.quick else 4000)
    n_brute = args.brute or (200 if args.quick else 400)
    rng = random.Random(args.seed)
    wall0 = time.perf_counter()

    t0 = time.perf_counter()
    entries, held, products = build_entries(n, rng)
    tokenizer = Tokenizer(products)
    matcher = FaqMatcher(tokenizer, entries)
    build_s = time.perf_counter() - t0
    warmup = make_queries(entries, held, 50, rng)
    queries = make_queries(entries, held, n_queries, rng)
    print(f"entries={n} texts={sum(1 + len(e.similar) for e in entries)} build={build_s:.2f}s "
          f"(tokenizer init + index)")

    for q in warmup:  # separate warm-up queries: none of the measured ones is pre-run
        matcher.match(q, top_k=5)
    lat, results = [], []
    for q in queries:
        t = time.perf_counter()
        res = matcher.match(q, top_k=5)
        lat.append((time.perf_counter() - t) * 1000)
        results.append(res)

    brute_idx = rng.sample(range(len(queries)), min(n_brute, len(queries)))
    brute_lat, compared, agree, misses = [], 0, 0, []
    for i in brute_idx:
        t = time.perf_counter()
        ref = matcher.brute_force(queries[i], top_k=5)
        brute_lat.append((time.perf_counter() - t) * 1000)
        # Agreement is measured only where brute force finds something at or above the
        # suggest threshold (both methods return matches >= suggest; otherwise both
        # return nothing useful and there is no top entry to compare).
        if ref:
            compared += 1
            got = results[i]
            if got and got[0].id == ref[0].id:
                agree += 1
            else:
                misses.append((queries[i], ref[0].question, ref[0].score,
                               got[0].question if got else None, got[0].score if got else None))

    p50, p99 = statistics.median(lat), pct(lat, 0.99)
    bp50, bp99 = statistics.median(brute_lat), pct(brute_lat, 0.99)
    hit = sum(bool(r) for r in results) / len(results)
    print(f"match   : {len(queries)} queries p50={p50:.3f} ms p99={p99:.3f} ms "
          f"max={max(lat):.3f} ms (with >=1 suggestion: {hit:.1%})")
    print(f"brute   : {len(brute_lat)} queries p50={bp50:.3f} ms p99={bp99:.3f} ms")
    print(f"speedup : brute_p99 / p99 = {bp99 / p99:.1f}x")
    print(f"top1    : agreement {agree}/{compared} = {agree / max(compared, 1):.4f}")
    for miss in misses[:5]:
        print("  disagree:", miss)
    wall = time.perf_counter() - wall0
    load = os.getloadavg()[0]  # other work on this machine inflates the tail latencies
    print(f"wall    : {wall:.1f} s (1-min load average at the end: {load:.2f})")
    print(json.dumps({
        "entries": n, "queries": len(queries), "brute_queries": len(brute_lat),
        "p50_ms": round(p50, 4), "p99_ms": round(p99, 4),
        "brute_p50_ms": round(bp50, 3), "brute_p99_ms": round(bp99, 3),
        "speedup": round(bp99 / p99, 1), "top1_agreement": round(agree / max(compared, 1), 4),
        "top1_compared": compared, "build_s": round(build_s, 2), "wall_s": round(wall, 1),
        "loadavg_1m": round(load, 2),
    }))


if __name__ == "__main__":
    main()
