"""Synthetic people: Chinese names, resident ID numbers with correct GB 11643 check digits, phones.

Everything is drawn from a caller's `random.Random`, so one seed always gives the same hospital; the
numbers are shaped like real ones (area code, birth date, sex parity, check digit) but are made up.
"""

from __future__ import annotations

import datetime as dt
import random

from engine.spec.checks import id_card_check_digit

SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN_MALE = ["建国", "志强", "伟", "磊", "军", "洋", "勇", "杰", "涛", "明辉", "国华", "俊杰", "浩然", "文博", "德胜", "永刚"]
GIVEN_FEMALE = ["秀英", "桂芳", "丽", "敏", "静", "艳", "娟", "霞", "婷婷", "雪梅", "玉兰", "欣怡", "晓燕", "淑珍", "佳琪", "慧"]
AREAS = [
    ("110105", "北京市朝阳区"),
    ("310104", "上海市徐汇区"),
    ("320102", "南京市玄武区"),
    ("330106", "杭州市西湖区"),
    ("440106", "广州市天河区"),
    ("650102", "乌鲁木齐市天山区"),
    ("220102", "长春市南关区"),
]
STREETS = ["人民路", "解放路", "建设大街", "中山路", "和平街", "文化路", "新华路", "长江路"]
MOBILE_PREFIXES = ["135", "136", "138", "139", "150", "152", "158", "186", "187", "189"]


def person_name(rng: random.Random, sex: str) -> str:
    """A two- or three-character name; `sex` is M or F."""
    given = GIVEN_MALE if sex == "M" else GIVEN_FEMALE
    return rng.choice(SURNAMES) + rng.choice(given)


def resident_id(area: str, birth: dt.date, sex: str, rng: random.Random) -> str:
    """An 18-digit resident ID: area, birth date, a sequence whose last digit is odd for men, even for
    women (GB 11643 §4), and the ISO 7064 MOD 11-2 check digit."""
    seq = rng.randrange(1, 499) * 2 + (1 if sex == "M" else 0)
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + id_card_check_digit(first17)


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def birth_date(rng: random.Random, *, at: dt.date, min_age: int, max_age: int) -> dt.date:
    start = dt.date(at.year - max_age, 1, 1)
    end = dt.date(at.year - min_age, 12, 31)
    return start + dt.timedelta(days=rng.randrange((end - start).days))


def address(rng: random.Random, area_name: str) -> str:
    return f"{area_name}{rng.choice(STREETS)}{rng.randrange(1, 300)}号{rng.randrange(1, 30)}栋{rng.randrange(101, 2600)}室"


def age_at(birth: dt.date, at: dt.date) -> int:
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))
