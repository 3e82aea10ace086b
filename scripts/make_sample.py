#!/usr/bin/env python3
"""Generate the synthetic Chinese query-pair sample in examples/sample/.

The pairs imitate short requests to a voice assistant: alarms, weather, music,
calls, timers, device settings, navigation, translation, phone models and
chit-chat. Every query is built from the templates and slot values written in
this file, drawn with random.Random(42), so each run writes byte-identical
files and no row comes from real user data.

Run it with Python 3.11 or later (standard library only):

    python scripts/make_sample.py             # writes examples/sample/
    python scripts/make_sample.py --out DIR   # writes the same files into DIR

Files written (UTF-8, LF line ends):
    train.tsv, valid.tsv      text_a<TAB>text_b<TAB>label
    test.tsv                  text_a<TAB>text_b (no label column)
    train.ids.tsv, valid.ids.tsv, test.ids.tsv
                              the same pairs desensitized GAIIC-style: every
                              character is replaced by an integer ID, IDs are
                              separated by single spaces
    vocab.ids.tsv             id<TAB>character for every ID used

Label 1 means the same intent with the same slot values, for example two
phrasings of "wake me at seven tomorrow". Label 0 means a different intent, or
the same intent with a different slot value (七点 vs 八点, 北京 vs 上海).
About 5% of pairs compare a query with one that lacks an optional slot (明天北京
天气 vs 北京天气) and get a random label. About 3% of all labels are flipped.
Both give the sample label noise like that of real annotated data.

IDs are assigned by descending character frequency over train.tsv, starting
at 1, with ties broken by code point. Characters of valid.tsv and test.tsv
that never occur in train.tsv get new IDs after the largest train ID, ranked
the same way over valid.tsv and test.tsv together. A few slot values (such as
the city 拉萨) are used only in valid and test, so those ID files always contain
IDs that the train file never uses.
"""

from __future__ import annotations

import argparse
import random
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SEED = 42
SPLIT_SIZES = (("train", 3000), ("valid", 600), ("test", 600))
MAX_QUERY_CHARS = 30

# Pair kinds, drawn in this order from one uniform number. Negatives take the
# share left over after positives and partial-slot pairs.
POSITIVE_SHARE = 0.34
PARTIAL_SHARE = 0.05
HARD_SLOT_SHARE_OF_NEGATIVES = 0.45
SIBLING_SHARE_OF_NEGATIVES = 0.25
LABEL_FLIP_SHARE = 0.03
# Chance that a slot value in valid/test comes from HELD_OUT_VALUES.
HELD_OUT_SHARE = 0.12
# Chance that a hard slot negative renders both meanings with one template,
# so that the slot value is the only difference.
HARD_SAME_TEMPLATE_SHARE = 0.4


@dataclass(frozen=True)
class SlotValue:
    """A slot value: its canonical key and the surface forms of the value."""

    key: str
    surfaces: tuple[str, ...]


@dataclass(frozen=True)
class Intent:
    """An intent with its query templates.

    Templates name slots as {slot}. Slots listed in `optional` may be absent
    from a meaning, and then only templates without them are used.
    `command` allows polite prefixes and suffixes such as 请 and 吧, and
    `question` allows a final question mark.
    """

    name: str
    templates: tuple[str, ...]
    optional: tuple[str, ...] = ()
    command: bool = True
    question: bool = False
    weight: float = 1.0


@dataclass(frozen=True)
class Meaning:
    """An intent with concrete slot values. Two queries with equal meanings get label 1."""

    intent: str
    slots: tuple[tuple[str, SlotValue], ...]  # sorted by slot name

    def slot_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.slots)

    def replace(self, name: str, value: SlotValue | None) -> Meaning:
        """Return a copy with slot `name` set to `value`, or removed for None."""
        slots = dict(self.slots)
        if value is None:
            del slots[name]
        else:
            slots[name] = value
        return Meaning(self.intent, tuple(sorted(slots.items(), key=lambda item: item[0])))


def slot_values(*specs: str) -> list[SlotValue]:
    """Build slot values from "key|variant|variant" specs, where the key is also a surface."""
    result = []
    for spec in specs:
        surfaces = tuple(spec.split("|"))
        result.append(SlotValue(surfaces[0], surfaces))
    return result


CHINESE_HOURS = {
    1: "一", 2: "两", 3: "三", 4: "四", 5: "五", 6: "六",
    7: "七", 8: "八", 9: "九", 10: "十", 11: "十一", 12: "十二",
}
# Day period -> (hours it may go with, surface forms). "" is a time given
# without a period, such as 七点.
DAY_PERIODS = {
    "": (tuple(range(1, 13)), ("",)),
    "早上": ((5, 6, 7, 8, 9), ("早上", "早晨")),
    "上午": ((9, 10, 11), ("上午",)),
    "中午": ((11, 12, 1), ("中午",)),
    "下午": ((1, 2, 3, 4, 5, 6), ("下午",)),
    "晚上": ((7, 8, 9, 10, 11), ("晚上",)),
}
# Minute -> (endings after a Chinese hour, endings after a digit hour).
MINUTE_FORMS = {
    0: (("点", "点整"), ("点", ":00")),
    30: (("点半", "点三十", "点三十分"), ("点半", ":30")),
    15: (("点一刻", "点十五", "点十五分"), (":15",)),
}


def build_time_values() -> list[SlotValue]:
    """Build every clock time value, keyed "period|hour|minute"."""
    result = []
    for period, (hours, period_surfaces) in DAY_PERIODS.items():
        for hour in hours:
            for minute, (chinese_endings, digit_endings) in MINUTE_FORMS.items():
                surfaces = []
                for period_surface in period_surfaces:
                    for ending in chinese_endings:
                        surfaces.append(period_surface + CHINESE_HOURS[hour] + ending)
                    for ending in digit_endings:
                        surfaces.append(period_surface + str(hour) + ending)
                result.append(SlotValue(f"{period}|{hour}|{minute}", tuple(surfaces)))
    return result


SLOT_VALUES: dict[str, list[SlotValue]] = {
    "day": slot_values(
        "今天|今儿", "明天|明儿", "后天", "大后天",
        "周六|星期六|礼拜六", "周日|星期天|星期日", "周一|星期一",
    ),
    "time": build_time_values(),
    "city": slot_values(
        "北京|北京市", "上海|上海市", "广州", "深圳", "杭州", "成都", "武汉",
        "南京", "西安", "重庆", "长沙", "天津", "苏州", "厦门",
    ),
    "singer": slot_values(
        "周杰伦|杰伦", "林俊杰", "陈奕迅", "邓紫棋|gem", "薛之谦", "王菲", "五月天",
        "李荣浩", "毛不易", "张学友", "刘德华", "孙燕姿",
    ),
    "contact": slot_values(
        "妈妈|老妈|我妈", "爸爸|老爸|我爸", "老婆", "老公", "张伟", "李娜", "王经理",
        "刘老师", "小明", "哥哥", "姐姐", "奶奶",
    ),
    "duration": slot_values(
        "一分钟|1分钟", "三分钟|3分钟", "五分钟|5分钟", "十分钟|10分钟",
        "十五分钟|15分钟", "二十分钟|20分钟", "半小时|半个小时|三十分钟|30分钟",
        "一小时|一个小时|1小时", "两小时|两个小时|2小时",
    ),
    "device": slot_values(
        "蓝牙", "wifi|WiFi|WIFI|无线网", "5g|5G|5g网络", "手电筒|手电", "飞行模式",
        "热点|个人热点", "移动数据|数据流量|流量", "nfc|NFC", "护眼模式",
    ),
    "app": slot_values(
        "微信", "支付宝", "抖音", "淘宝", "相册", "设置", "qq|QQ", "美团", "计算器", "日历",
    ),
    "place": slot_values(
        "火车站", "机场", "加油站|最近的加油站", "公司", "人民广场", "医院|最近的医院",
        "超市", "地铁站", "天安门", "西湖", "学校",
    ),
    "phrase": slot_values(
        "你好", "谢谢", "我爱你", "早上好", "对不起", "再见", "生日快乐", "多少钱", "晚安",
    ),
    "lang": slot_values("英语|英文", "日语|日文", "韩语|韩文", "法语|法文", "德语|德文"),
    "model": slot_values(
        "reno5|Reno5|oppo的reno5|opporeno5", "reno6|Reno6|reno6手机", "reno7|Reno7",
        "findx3|FindX3|findx3手机", "findx5|FindX5", "a93|A93|oppoa93", "k9|K9|oppok9",
        "一加9|1加9|oneplus9", "r17|R17|oppor17",
    ),
    "brand": slot_values(
        "oppo|OPPO|欧珀", "一加|oneplus", "realme|真我", "华为|huawei", "小米|xiaomi",
        "vivo|VIVO", "苹果|apple",
    ),
}

# Values used only in valid and test, so that their ID files contain
# characters that never occur in train.
HELD_OUT_VALUES: dict[str, list[SlotValue]] = {
    "city": slot_values("拉萨", "乌鲁木齐", "哈尔滨"),
    "singer": slot_values("蔡依林", "鹿晗"),
    "contact": slot_values("邹总", "龚阿姨"),
    "device": slot_values("勿扰模式|免打扰"),
    "app": slot_values("哔哩哔哩|b站"),
    "place": slot_values("鼓浪屿"),
    "lang": slot_values("俄语|俄文"),
    "model": slot_values("realmegt|真我gt"),
    "brand": slot_values("魅族"),
}

INTENTS: tuple[Intent, ...] = (
    Intent("alarm_set", (
        "{day}{time}叫我起床", "{day}{time}叫醒我", "定一个{day}{time}的闹钟",
        "定个{day}{time}的闹钟", "设置{day}{time}的闹钟", "{day}{time}的闹钟",
        "闹钟定在{day}{time}", "把闹钟设到{day}{time}", "{day}{time}提醒我起床",
        "{day}我要{time}起床", "我{day}{time}要起床帮我定个闹钟",
        "你能不能帮我定一个{day}{time}的闹钟我怕起不来",
        "{time}叫我起床", "{time}叫醒我", "定一个{time}的闹钟", "定个{time}的闹钟",
        "设置{time}的闹钟", "{time}的闹钟", "闹钟定在{time}", "把闹钟设到{time}",
        "{time}提醒我起床", "设一个{time}的闹铃",
    ), optional=("day",), weight=3.0),
    Intent("alarm_cancel", (
        "取消{day}{time}的闹钟", "把{day}{time}的闹钟关掉", "{day}{time}的闹钟不要了",
        "删除{day}{time}的闹钟", "关闭{day}{time}的闹钟",
        "取消{time}的闹钟", "把{time}的闹钟关掉", "{time}的闹钟不要了",
        "删除{time}的闹钟", "关闭{time}的闹钟", "{time}不用叫我了", "{time}的闹钟取消掉",
    ), optional=("day",), weight=1.5),
    Intent("weather", (
        "{day}{city}天气怎么样", "{city}{day}的天气", "查一下{city}{day}的天气",
        "{day}{city}的天气如何", "{city}{day}天气好不好", "{day}{city}天气",
        "告诉我{day}{city}的天气情况", "{city}{day}天气预报", "{day}{city}是什么天气",
        "{day}天气怎么样", "{day}的天气", "{day}天气如何", "查一下{day}的天气", "{day}天气预报",
        "{city}天气怎么样", "{city}的天气", "{city}天气如何", "查一下{city}的天气",
        "{city}天气预报", "{city}现在什么天气",
        "天气怎么样", "查天气", "外面天气如何", "看一下天气", "天气预报",
    ), optional=("day", "city"), question=True, weight=3.0),
    Intent("rain", (
        "{day}{city}会下雨吗", "{city}{day}下雨吗", "{day}{city}下不下雨",
        "{day}去{city}要带伞吗", "{city}{day}有雨吗",
        "{day}会下雨吗", "{day}下不下雨", "{day}出门要带伞吗", "{day}有雨吗",
        "{city}会下雨吗", "{city}下不下雨", "{city}有雨吗",
        "会下雨吗", "要带伞吗", "外面下雨了吗", "等会儿下不下雨",
    ), optional=("day", "city"), command=False, question=True, weight=1.5),
    Intent("music_play", (
        "播放{singer}的歌", "放一首{singer}的歌", "我想听{singer}的歌", "来首{singer}的歌",
        "放{singer}的歌曲", "给我放点{singer}的音乐", "听{singer}", "播放{singer}的音乐",
        "随便放一首{singer}的歌", "我想听一下{singer}唱的歌",
        "放首歌", "来点音乐", "播放音乐", "我想听歌", "放歌", "随便放首歌听听",
    ), optional=("singer",), weight=2.5),
    Intent("music_pause", (
        "暂停播放", "别放了", "音乐暂停", "停止播放音乐", "先暂停", "歌停一下",
        "不要放歌了", "把音乐关了",
    )),
    Intent("music_next", (
        "下一首", "切歌", "换一首", "播放下一首", "换首歌", "这首不好听换一首", "下一曲",
    )),
    Intent("call", (
        "给{contact}打电话", "打电话给{contact}", "拨打{contact}的电话", "呼叫{contact}",
        "打给{contact}", "打{contact}的电话", "给{contact}打个电话", "我要给{contact}打电话",
        "拨通{contact}的电话",
    ), weight=2.0),
    Intent("message", (
        "给{contact}发短信", "发短信给{contact}", "给{contact}发个消息", "发信息给{contact}",
        "给{contact}发条短信", "我要给{contact}发消息",
    ), weight=1.2),
    Intent("timer", (
        "{duration}后提醒我", "倒计时{duration}", "定一个{duration}的计时器",
        "设置{duration}倒计时", "{duration}之后叫我", "计时{duration}",
        "开始{duration}倒计时", "{duration}以后提醒我一下", "我在煮面{duration}后叫我",
    ), weight=1.5),
    Intent("toggle_on", (
        "打开{device}", "开启{device}", "把{device}打开", "{device}打开", "开一下{device}",
        "开{device}", "{device}开一下", "把{device}开起来", "我要用{device}帮我打开",
    ), weight=2.0),
    Intent("toggle_off", (
        "关闭{device}", "关掉{device}", "把{device}关了", "{device}关掉", "关一下{device}",
        "关{device}", "{device}不用了关掉吧", "把{device}给关上",
    ), weight=2.0),
    Intent("open_app", (
        "打开{app}", "启动{app}", "进入{app}", "把{app}打开", "我要用{app}",
        "开一下{app}", "开{app}",
    ), weight=1.5),
    Intent("volume_up", (
        "声音大一点", "音量调大", "把声音调大一点", "大点声", "音量加大", "声音太小了",
        "音量调高一点", "声音再大点", "把音量开大",
    )),
    Intent("volume_down", (
        "声音小一点", "音量调小", "把声音调小一点", "小点声", "音量降低", "声音太大了",
        "音量调低一点", "声音再小点", "把音量关小",
    )),
    Intent("brightness_up", (
        "屏幕亮一点", "亮度调高", "把屏幕调亮一点", "调亮一点", "屏幕太暗了", "亮度调大一点",
        "把亮度调高",
    )),
    Intent("brightness_down", (
        "屏幕暗一点", "亮度调低", "把屏幕调暗一点", "调暗一点", "屏幕太亮了", "亮度调小一点",
        "把亮度调低", "屏幕太刺眼了",
    )),
    Intent("navigate", (
        "导航到{place}", "去{place}怎么走", "带我去{place}", "到{place}的路线",
        "开车去{place}", "我要去{place}", "导航去{place}", "去{place}的路怎么走",
        "规划一下去{place}的路线", "从这里到{place}怎么走",
    ), weight=1.5),
    Intent("translate", (
        "{phrase}用{lang}怎么说", "把{phrase}翻译成{lang}", "{phrase}的{lang}是什么",
        "{phrase}翻译成{lang}", "用{lang}说{phrase}", "{lang}的{phrase}怎么说",
        "{phrase}在{lang}里怎么讲",
    ), question=True, weight=1.5),
    Intent("joke", (
        "讲个笑话", "给我讲个笑话", "来个笑话", "说个笑话", "讲一个笑话听听", "逗我笑一下",
        "有没有好笑的笑话", "说个段子",
    )),
    Intent("story", (
        "讲个故事", "给我讲个故事", "来个故事", "说个故事", "讲一个故事听听", "我想听故事",
        "讲个睡前故事",
    )),
    Intent("price", (
        "{model}多少钱", "{model}的价格", "{model}卖多少钱", "{model}什么价",
        "{model}现在什么价格", "买一台{model}要多少钱", "{model}价格是多少", "{model}售价多少",
    ), command=False, question=True, weight=2.0),
    Intent("model_5g", (
        "{model}支持5g吗", "{model}是5g手机吗", "{model}有没有5G", "{model}能用5g网络吗",
        "{model}支不支持5G",
    ), command=False, question=True, weight=1.2),
    Intent("brand_origin", (
        "{brand}是哪个国家的", "{brand}是国产的吗", "{brand}是哪里的品牌", "{brand}手机是哪国的",
        "{brand}是中国的牌子吗",
    ), command=False, question=True),
    Intent("chat_bored", (
        "好无聊啊", "我好无聊", "无聊死了", "太无聊了", "真无聊", "好无聊", "我现在好无聊啊",
        "一个人在家好无聊",
    ), command=False, weight=0.8),
    Intent("chat_sad", (
        "我好难过", "我心情不好", "我很伤心", "心情很差", "我不开心",
        "今天被老板骂了心情很不好", "我今天特别难过",
    ), command=False, weight=0.8),
    Intent("chat_name", (
        "你叫什么名字", "你是谁", "你的名字是什么", "怎么称呼你", "你叫啥", "告诉我你的名字",
    ), command=False, question=True, weight=0.8),
    Intent("chat_age", (
        "你几岁了", "你多大了", "你今年多大", "你的年龄是多少", "你今年几岁", "你多大年纪了",
    ), command=False, question=True, weight=0.8),
    Intent("chat_goodnight", (
        "晚安", "我要睡觉了", "我去睡了", "睡觉啦晚安", "我先睡了晚安", "困了我要睡了",
    ), command=False, weight=0.8),
)
INTENTS_BY_NAME = {intent.name: intent for intent in INTENTS}

# Intent pairs that users confuse or that read alike, used for hard negatives.
SIBLING_INTENTS = (
    ("alarm_set", "alarm_cancel"), ("alarm_set", "timer"), ("weather", "rain"),
    ("music_play", "music_pause"), ("music_pause", "music_next"), ("call", "message"),
    ("toggle_on", "toggle_off"), ("toggle_on", "open_app"), ("volume_up", "volume_down"),
    ("brightness_up", "brightness_down"), ("volume_up", "brightness_up"),
    ("volume_down", "brightness_down"), ("joke", "story"), ("price", "model_5g"),
    ("chat_name", "chat_age"), ("chat_bored", "chat_sad"), ("chat_goodnight", "alarm_set"),
)

WAKE_WORDS = ("小布", "小布小布", "嘿小布")
POLITE_PREFIXES = ("请", "麻烦你", "帮我")
# "帮我" reads naturally only before a verb, so it is added only to templates
# that start with one of these.
VERB_STARTS = (
    "打开", "关闭", "关掉", "播放", "放", "定", "设置", "导航", "查", "取消", "拨打",
    "删除", "开启", "启动", "倒计时", "计时", "规划",
)
COMMAND_SUFFIXES = ("吧", "呀", "好吗", "谢谢")
CHAT_SUFFIXES = ("呀", "啊", "呢")
FINAL_PARTICLES = "吗呢吧啊呀了"
# Speech-recognition errors and colloquial variants: (written form, variant).
SURFACE_NOISE = (
    ("闹钟", "闹中"), ("蓝牙", "蓝芽"), ("天气", "天器"), ("笑话", "笑化"), ("音量", "音亮"),
    ("打电话", "打店话"), ("怎么", "咋"), ("什么", "啥"), ("的", "得"), ("在", "再"),
    ("吗", "嘛"),
)


def template_slots(template: str) -> tuple[str, ...]:
    """Return the sorted slot names that a template uses."""
    names = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    return tuple(sorted(names))


def intent_slots(intent: Intent) -> tuple[str, ...]:
    """Return the sorted names of every slot the intent's templates use."""
    names: list[str] = []
    for template in intent.templates:
        for name in template_slots(template):
            if name not in names:
                names.append(name)
    return tuple(sorted(names))


def validate_intents() -> None:
    """Raise ValueError if a template names an unknown slot or a slot set has under 2 templates."""
    for intent in INTENTS:
        required = [name for name in intent_slots(intent) if name not in intent.optional]
        for template in intent.templates:
            for name in template_slots(template):
                if name not in SLOT_VALUES:
                    raise ValueError(f"intent {intent.name}: template {template!r} uses unknown slot {name!r}")
            missing = [name for name in required if name not in template_slots(template)]
            if missing:
                raise ValueError(f"intent {intent.name}: template {template!r} lacks required slots {missing}")
        for subset in optional_subsets(intent.optional):
            names = tuple(sorted(required + list(subset)))
            count = sum(1 for template in intent.templates if template_slots(template) == names)
            if count < 2:
                raise ValueError(f"intent {intent.name}: slot set {names} has {count} templates, expected at least 2")


def optional_subsets(optional: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Return every subset of the optional slot names, in a fixed order."""
    subsets: list[tuple[str, ...]] = [()]
    for name in optional:
        subsets += [subset + (name,) for subset in subsets]
    return subsets


def pick_intent(rng: random.Random, candidates: tuple[Intent, ...] = INTENTS) -> Intent:
    return rng.choices(candidates, weights=[intent.weight for intent in candidates])[0]


def pick_value(slot: str, rng: random.Random, held_out: bool) -> SlotValue:
    """Draw a value for `slot`. held_out allows the values reserved for valid and test."""
    if held_out and slot in HELD_OUT_VALUES and rng.random() < HELD_OUT_SHARE:
        return rng.choice(HELD_OUT_VALUES[slot])
    return rng.choice(SLOT_VALUES[slot])


def sample_meaning(
    intent: Intent,
    rng: random.Random,
    held_out: bool,
    fixed: dict[str, SlotValue] | None = None,
    force_optional: bool = False,
) -> Meaning:
    """Draw slot values for the intent.

    Each optional slot is present with probability 0.6, or at least one is
    present when force_optional is set. Slots named in `fixed` take the given
    value instead of a random one.
    """
    fixed = fixed or {}
    names = [name for name in intent_slots(intent) if name not in intent.optional]
    present = [name for name in intent.optional if rng.random() < 0.6]
    if force_optional and intent.optional and not present:
        present = [rng.choice(intent.optional)]
    names += present

    slots = {}
    for name in sorted(names):
        slots[name] = fixed[name] if name in fixed else pick_value(name, rng, held_out)
    return Meaning(intent.name, tuple(sorted(slots.items(), key=lambda item: item[0])))


def time_neighbor(value: SlotValue, rng: random.Random) -> SlotValue:
    """Return a time that differs from `value` in exactly one of period, hour and minute.

    A period change to or from "no period" is skipped, because 七点 and 早上七点
    may mean the same time.
    """
    period, hour, minute = value.key.split("|")
    candidates = []
    for other in SLOT_VALUES["time"]:
        other_period, other_hour, other_minute = other.key.split("|")
        changed = (other_period != period) + (other_hour != hour) + (other_minute != minute)
        if changed != 1:
            continue
        if other_period != period and "" in (period, other_period):
            continue
        candidates.append(other)
    return rng.choice(candidates)


def slot_neighbor(slot: str, value: SlotValue, rng: random.Random, held_out: bool) -> SlotValue:
    """Return a different value of the same slot, for a hard negative."""
    if slot == "time":
        return time_neighbor(value, rng)
    pool = list(SLOT_VALUES[slot])
    if held_out:
        pool += HELD_OUT_VALUES.get(slot, [])
    return rng.choice([other for other in pool if other.key != value.key])


def decorate(text: str, template: str, intent: Intent, rng: random.Random) -> str:
    """Add the noise of real queries: recognition errors, particles, prefixes and punctuation."""
    if rng.random() < 0.06:
        applicable = [pair for pair in SURFACE_NOISE if pair[0] in text]
        if applicable:
            written, variant = rng.choice(applicable)
            text = text.replace(written, variant, 1)

    if rng.random() < 0.15 and text[-1] not in FINAL_PARTICLES:
        suffixes = COMMAND_SUFFIXES if intent.command else CHAT_SUFFIXES
        text += rng.choice(suffixes)

    if intent.command and rng.random() < 0.12:
        prefix = rng.choice(POLITE_PREFIXES)
        if prefix != "帮我" or template.startswith(VERB_STARTS):
            text = prefix + text

    if rng.random() < 0.08:
        text = rng.choice(WAKE_WORDS) + text

    mark_roll = rng.random()
    if intent.question and mark_roll < 0.15:
        text += rng.choice(("？", "?"))
    elif mark_roll < 0.04:
        text += rng.choice(("。", "！"))
    return text


def render(meaning: Meaning, rng: random.Random, avoid_template: str | None = None) -> tuple[str, str]:
    """Return (query, template) for the meaning, at most MAX_QUERY_CHARS long.

    avoid_template is skipped when another template fits the same slots.
    """
    intent = INTENTS_BY_NAME[meaning.intent]
    names = meaning.slot_names()
    templates = [template for template in intent.templates if template_slots(template) == names]
    if avoid_template is not None and len(templates) > 1:
        templates = [template for template in templates if template != avoid_template]

    while True:
        template = rng.choice(templates)
        filled = template.format(**{name: rng.choice(value.surfaces) for name, value in meaning.slots})
        text = decorate(filled, template, intent, rng)
        if len(text) <= MAX_QUERY_CHARS:
            return text, template


def make_positive(rng: random.Random, held_out: bool) -> tuple[str, str, int]:
    """Render one meaning twice, usually with two different templates."""
    meaning = sample_meaning(pick_intent(rng), rng, held_out)
    text_a, template_a = render(meaning, rng)
    avoid = template_a if rng.random() < 0.85 else None
    text_b, _ = render(meaning, rng, avoid_template=avoid)
    return text_a, text_b, 1


def make_partial(rng: random.Random, held_out: bool) -> tuple[str, str, int]:
    """Pair a meaning with the same meaning minus one optional slot, with a random label."""
    candidates = tuple(intent for intent in INTENTS if intent.optional)
    meaning = sample_meaning(pick_intent(rng, candidates), rng, held_out, force_optional=True)
    intent = INTENTS_BY_NAME[meaning.intent]
    present = [name for name in meaning.slot_names() if name in intent.optional]
    reduced = meaning.replace(rng.choice(present), None)
    text_a, _ = render(meaning, rng)
    text_b, _ = render(reduced, rng)
    return text_a, text_b, int(rng.random() < 0.5)


def make_hard_slot_negative(rng: random.Random, held_out: bool) -> tuple[str, str, int]:
    """Pair a meaning with the same intent where one slot value differs."""
    candidates = tuple(intent for intent in INTENTS if intent_slots(intent))
    meaning = sample_meaning(pick_intent(rng, candidates), rng, held_out, force_optional=True)
    slot = rng.choice(meaning.slot_names())
    other = meaning.replace(slot, slot_neighbor(slot, dict(meaning.slots)[slot], rng, held_out))
    text_a, template_a = render(meaning, rng)

    if rng.random() < HARD_SAME_TEMPLATE_SHARE:
        intent = INTENTS_BY_NAME[meaning.intent]
        filled = template_a.format(**{name: rng.choice(value.surfaces) for name, value in other.slots})
        text_b = decorate(filled, template_a, intent, rng)
        if len(text_b) <= MAX_QUERY_CHARS:
            return text_a, text_b, 0
    text_b, _ = render(other, rng)
    return text_a, text_b, 0


def make_sibling_negative(rng: random.Random, held_out: bool) -> tuple[str, str, int]:
    """Pair two related intents, sharing slot values where both have the slot."""
    first, second = rng.choice(SIBLING_INTENTS)
    if rng.random() < 0.5:
        first, second = second, first
    meaning_a = sample_meaning(INTENTS_BY_NAME[first], rng, held_out)
    meaning_b = sample_meaning(INTENTS_BY_NAME[second], rng, held_out, fixed=dict(meaning_a.slots))
    text_a, _ = render(meaning_a, rng)
    text_b, _ = render(meaning_b, rng)
    return text_a, text_b, 0


def make_random_negative(rng: random.Random, held_out: bool) -> tuple[str, str, int]:
    """Pair two meanings of different intents drawn independently."""
    intent_a = pick_intent(rng)
    intent_b = pick_intent(rng)
    while intent_b.name == intent_a.name:
        intent_b = pick_intent(rng)
    text_a, _ = render(sample_meaning(intent_a, rng, held_out), rng)
    text_b, _ = render(sample_meaning(intent_b, rng, held_out), rng)
    return text_a, text_b, 0


def make_pair(rng: random.Random, held_out: bool) -> tuple[str, str, int]:
    """Draw a pair kind, build the pair, then flip its label with LABEL_FLIP_SHARE."""
    roll = rng.random()
    if roll < POSITIVE_SHARE:
        builder = make_positive
    elif roll < POSITIVE_SHARE + PARTIAL_SHARE:
        builder = make_partial
    else:
        negative_roll = rng.random()
        if negative_roll < HARD_SLOT_SHARE_OF_NEGATIVES:
            builder = make_hard_slot_negative
        elif negative_roll < HARD_SLOT_SHARE_OF_NEGATIVES + SIBLING_SHARE_OF_NEGATIVES:
            builder = make_sibling_negative
        else:
            builder = make_random_negative

    text_a, text_b, label = builder(rng, held_out)
    if rng.random() < 0.5:
        text_a, text_b = text_b, text_a
    if rng.random() < LABEL_FLIP_SHARE:
        label = 1 - label
    return text_a, text_b, label


def generate_splits(rng: random.Random) -> dict[str, list[tuple[str, str, int]]]:
    """Generate every split so that no pair repeats in either order, within or across splits."""
    seen: set[tuple[str, str]] = set()
    splits: dict[str, list[tuple[str, str, int]]] = {}
    for split, size in SPLIT_SIZES:
        held_out = split != "train"
        rows: list[tuple[str, str, int]] = []
        while len(rows) < size:
            text_a, text_b, label = make_pair(rng, held_out)
            key = (min(text_a, text_b), max(text_a, text_b))
            if text_a == text_b or key in seen:
                continue
            seen.add(key)
            rows.append((text_a, text_b, label))
        splits[split] = rows
    return splits


def rank_characters(counts: Counter[str]) -> list[str]:
    """Sort characters by descending count, breaking ties by code point."""
    return sorted(counts, key=lambda char: (-counts[char], ord(char)))


def build_vocabulary(splits: dict[str, list[tuple[str, str, int]]]) -> dict[str, int]:
    """Map characters to IDs: train characters by frequency from 1, then unseen valid/test characters."""
    train_counts: Counter[str] = Counter()
    for text_a, text_b, _ in splits["train"]:
        train_counts.update(text_a)
        train_counts.update(text_b)
    vocabulary = {char: index for index, char in enumerate(rank_characters(train_counts), start=1)}

    unseen_counts: Counter[str] = Counter()
    for split in ("valid", "test"):
        for text_a, text_b, _ in splits[split]:
            unseen_counts.update(char for char in text_a + text_b if char not in vocabulary)
    for char in rank_characters(unseen_counts):
        vocabulary[char] = len(vocabulary) + 1
    return vocabulary


def write_lines(path: Path, lines: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("".join(line + "\n" for line in lines))


def write_outputs(out_dir: Path, splits: dict[str, list[tuple[str, str, int]]], vocabulary: dict[str, int]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        labeled = split != "test"
        text_lines = []
        id_lines = []
        for text_a, text_b, label in rows:
            ids_a = " ".join(str(vocabulary[char]) for char in text_a)
            ids_b = " ".join(str(vocabulary[char]) for char in text_b)
            if labeled:
                text_lines.append(f"{text_a}\t{text_b}\t{label}")
                id_lines.append(f"{ids_a}\t{ids_b}\t{label}")
            else:
                text_lines.append(f"{text_a}\t{text_b}")
                id_lines.append(f"{ids_a}\t{ids_b}")
        write_lines(out_dir / f"{split}.tsv", text_lines)
        write_lines(out_dir / f"{split}.ids.tsv", id_lines)

    vocab_lines = [f"{index}\t{char}" for char, index in sorted(vocabulary.items(), key=lambda item: item[1])]
    write_lines(out_dir / "vocab.ids.tsv", vocab_lines)


def check_outputs(splits: dict[str, list[tuple[str, str, int]]], vocabulary: dict[str, int]) -> None:
    """Raise ValueError if a query contains whitespace or valid/test lack unseen IDs."""
    for split, rows in splits.items():
        for text_a, text_b, _ in rows:
            for text in (text_a, text_b):
                if any(char.isspace() for char in text):
                    raise ValueError(f"{split}: query {text!r} contains whitespace")

    train_chars = {char for text_a, text_b, _ in splits["train"] for char in text_a + text_b}
    max_train_id = len(train_chars)
    for split in ("valid", "test"):
        unseen = [char for text_a, text_b, _ in splits[split] for char in text_a + text_b if vocabulary[char] > max_train_id]
        if not unseen:
            raise ValueError(
                f"{split}: contains no character outside the train vocabulary. "
                "Increase HELD_OUT_SHARE or add values to HELD_OUT_VALUES."
            )


def summarize(splits: dict[str, list[tuple[str, str, int]]], vocabulary: dict[str, int]) -> None:
    """Print counts, positive rates and query lengths per split."""
    train_size = len({char for text_a, text_b, _ in splits["train"] for char in text_a + text_b})
    print(f"vocabulary: {len(vocabulary)} IDs, {train_size} from train")
    for split, rows in splits.items():
        lengths = [len(text) for text_a, text_b, _ in rows for text in (text_a, text_b)]
        positives = sum(label for _, _, label in rows)
        line = (
            f"{split}: {len(rows)} pairs, positive rate {positives / len(rows):.3f}, "
            f"query length mean {sum(lengths) / len(lengths):.2f} max {max(lengths)}"
        )
        if split == "test":
            line += " (labels not written)"
        print(line)


def main() -> None:
    default_out = Path(__file__).resolve().parent.parent / "examples" / "sample"
    parser = argparse.ArgumentParser(description="Generate the synthetic query-pair sample.")
    parser.add_argument("--out", type=Path, default=default_out, help="output directory (default: examples/sample in the repository)")
    args = parser.parse_args()

    validate_intents()
    rng = random.Random(SEED)
    splits = generate_splits(rng)
    vocabulary = build_vocabulary(splits)
    check_outputs(splits, vocabulary)
    write_outputs(args.out, splits, vocabulary)
    summarize(splits, vocabulary)


if __name__ == "__main__":
    main()
