"""Entities from free text: one test per kind, with the tricky cases named."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from dialogs.entities import Duration, extract, number

TODAY = date(2024, 11, 20)  # a Wednesday
CITIES = ["福州", "福清", "厦门", "长沙", "苏州", "杭州", "南昌市"]


def ents(text: str, today: date = TODAY):
    return extract(text, CITIES, today=today)


# -- waybills and phones -------------------------------------------------------------------------

@pytest.mark.parametrize("text, waybills, phones", [
    ("运单号 13905912345", ["13905912345"], []),  # looks like a phone, but is introduced as a waybill
    ("单号：13905912345", ["13905912345"], []),
    ("运但号13905912345", ["13905912345"], []),  # the homophone typo still introduces it
    ("13905912345", [], ["13905912345"]),
    ("我的电话13905912345，运单12345678", ["12345678"], ["13905912345"]),
    ("运单号 62093317，电话 13859012345", ["62093317"], ["13859012345"]),
    ("运单１２３４５６７８９０的货", ["1234567890"], []),  # full-width digits
    ("理赔单号 lp20240311", ["LP20240311"], []),  # letter prefix, upper-cased
    ("单号 880192736451 麻烦查一下", ["880192736451"], []),  # 12 digits starting with 1: not a phone
    ("单号 12345", [], []),  # too short for a waybill
    ("运单号是：SH—20261129049", ["SH20261129049"], []),  # a long dash after the prefix keeps it (probe 3, C101)
    ("单号 2026 1129 0520", ["202611290520"], []),  # groups of digits named a waybill (probe 3, C104)
    ("2026 11 29 发的货", [], []),  # the same shape not named a waybill is a date
])
def test_waybills_and_phones(text, waybills, phones):
    found = ents(text)
    assert list(found.waybills) == waybills
    assert list(found.phones) == phones


@pytest.mark.parametrize("text, phone", [
    ("座机 0591-87654321", "059187654321"),
    ("(0591)87654321", "059187654321"),
    ("（0591）87654321", "059187654321"),  # full-width brackets
    ("0591 87654321", "059187654321"),
    ("010-12345678", "01012345678"),
    ("+86 139 0591 2345", "13905912345"),
    ("+8613905912345", "13905912345"),
    ("139-0591-2345", "13905912345"),
    ("手机 186 7312 0098", "18673120098"),
])
def test_phone_forms(text, phone):
    found = ents(text)
    assert found.phones == (phone,)
    assert found.waybills == () and found.amounts == ()


# -- money ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, amount", [
    ("5000", "5000"),
    ("5,000元", "5000"),
    ("5千", "5000"),
    ("1.2万", "12000"),
    ("五千元", "5000"),
    ("两千五", "2500"),
    ("一万二", "12000"),
    ("3k", "3000"),
    ("3万5", "35000"),
    ("¥1,200.50", "1200.5"),
    ("５０００元", "5000"),  # full-width digits
    ("兩千五百塊", "2500"),  # traditional characters
    ("收了我两百八", "280"),
    ("赔了三百块就想打发我", "300"),
    ("价值两万多的茶具", "20000"),  # "more than 20000": the least it can be
    ("会员卡一张要5块吗", "5"),
])
def test_amounts(text, amount):
    assert ents(text).amounts == (Decimal(amount),)


@pytest.mark.parametrize("text, amounts", [
    ("12箱货收了我800", ["800"]),  # 12 counts boxes
    ("一吨货收我1200，隔壁才800", ["1200", "800"]),
    ("上次才三百这次要五百", ["300", "500"]),
    ("货值五千只赔我五百", ["5000", "500"]),
    ("代收1.2万手续费是不是30块封顶", ["12000", "30"]),
    ("运单12345678运费500元", ["500"]),
    ("电话 13905912345，运费600", ["600"]),
])
def test_amounts_next_to_other_numbers(text, amounts):
    assert list(ents(text).amounts) == [Decimal(a) for a in amounts]


@pytest.mark.parametrize("text", [
    "11月3号发的货",
    "我3号交的货，18号才到",
    "2024-11-03 发的",
    "11/3 发的货",
    "下午3点送到",
    "今晚十点的车",
    "我家住5楼",
    "货三天了还没发",
    "等了72小时",
    "保价费是0.5%吗",
    "我有A2驾照",
    "第300票",
    "十万火急",
    "玻璃碎了三块",  # pieces, not yuan
    "十几个杯子碎了",
    "选3",  # a menu choice
])
def test_no_amount_from_dates_times_counts_or_idioms(text):
    assert ents(text).amounts == ()


def test_number_reads_chinese_numerals_and_rejects_ranges():
    assert number("一万二") == Decimal(12000)
    assert number("两千零五十") == Decimal(2050)
    assert number("1.2万") == Decimal(12000)
    assert number("半") == Decimal("0.5")
    # cn2an reads a run of digit characters one by one (七八 → 78); in speech it is a range.
    assert number("七八") is None
    assert number("一两") is None


# -- durations -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text, duration", [
    ("三天了", "P3D"),
    ("两个星期", "P2W"),
    ("48小时", "PT48H"),
    ("一个礼拜了", "P1W"),
    ("一个多月了还没结果", "P1M"),
    ("一天半", "P1.5D"),
    ("半个月", "P0.5M"),
    ("都第六天了", "P6D"),
    ("等了四十多天", "P40D"),
    ("貨物停了一個禮拜", "P1W"),
    ("stuck 5 days", "P5D"),
])
def test_durations(text, duration):
    assert [str(d) for d in ents(text).durations] == [duration]


@pytest.mark.parametrize("text", ["七八天了", "搞了半天", "第二天晚上才装车", "3月份发的货", "2024年的货"])
def test_no_duration(text):
    assert ents(text).durations == ()


def test_duration_in_days():
    two_weeks = ents("两个星期").durations[0]
    assert two_weeks == Duration(Decimal(2), "week")
    assert two_weeks.days == 14
    assert two_weeks.as_timedelta().days == 14


# -- dates ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, day", [
    ("昨天发的", date(2024, 11, 19)),
    ("前天", date(2024, 11, 18)),
    ("大前天", date(2024, 11, 17)),
    ("明天能到吗", date(2024, 11, 21)),
    ("上周五拖运的", date(2024, 11, 15)),
    ("上礼拜三", date(2024, 11, 13)),
    ("周五", date(2024, 11, 22)),  # this week's
    ("下周一", date(2024, 11, 25)),
    ("上星期天", date(2024, 11, 17)),
    ("11月3号", date(2024, 11, 3)),
    ("十一月三日", date(2024, 11, 3)),
    ("3号", date(2024, 11, 3)),
    ("25号", date(2024, 11, 25)),  # a few days ahead: this month
    ("28号发的货", date(2024, 10, 28)),  # far ahead this month: last month's
    ("三天前", date(2024, 11, 17)),
    ("上个月15号", date(2024, 10, 15)),
    ("2024年3月5日", date(2024, 3, 5)),
    ("2024-03-05", date(2024, 3, 5)),
    ("11-3到的货", date(2024, 11, 3)),  # a dash between month and day
])
def test_dates(text, day):
    assert ents(text).dates == (day,)


def test_dates_across_the_new_year():
    assert ents("11月3号发的", today=date(2025, 1, 10)).dates == (date(2024, 11, 3),)
    assert ents("1月3号能到吗", today=date(2024, 12, 20)).dates == (date(2025, 1, 3),)


@pytest.mark.parametrize("text", ["我家住3号楼", "地铁1号线", "以前天天催", "3-5天能到吗", "要20-30件"])
def test_no_date(text):
    assert ents(text).dates == ()


# -- cities and salutation -----------------------------------------------------------------------

def test_cities_in_order_of_appearance_folded_and_by_their_known_name():
    assert ents("货从福州发到长沙").cities == ("福州", "长沙")
    assert ents("本來是到杭州，結果跑到蘇州").cities == ("杭州", "苏州")  # traditional characters
    assert ents("我要的是福州不是福清").cities == ("福州", "福清")
    assert ents("到南昌的货").cities == ("南昌市",)  # known as 南昌市, said without 市
    assert ents("发到郑州").cities == ()  # not a known city
    assert extract("发到福州").cities == ()  # no list given


@pytest.mark.parametrize("text, salutation", [
    ("我是王先生，运单 12345678", "王先生"),
    ("我姓李，女的", "李女士"),
    ("李女士，我的货呢", "李女士"),
    ("我是张小姐", "张女士"),
    ("我是歐陽先生", "欧阳先生"),  # compound surname, traditional
    ("我是女的，搬不动", "女士"),
    ("我一个女的怎么搬得动三百斤的货", "女士"),
    ("我是男的", "先生"),
    ("那个姓陈的师傅说话太难听了", None),  # someone else's surname
    ("我姓王", "王先生/女士"),  # no 先生 or 女士 to go with it: the written form that leaves both open
    ("你们客服小姑娘说话难听", None),
    ("我家先生去提的货，我是李女士", "李女士"),  # 我家先生 is her husband
    # probe 8: the titles customers give themselves, kept as said; a surname is needed
    ("我是泉州的陈老板 昨天发去上海的货", "陈老板"),
    ("我叫李阿婆 从泉州寄来的", "李阿婆"),
    ("收货人是我 黄小姐 从福州发到晋江", "黄女士"),
    ("我老板让我问一下", None),
    ("我是送货的师傅", None),
])
def test_salutation(text, salutation):
    assert ents(text).salutation == salutation


def test_as_json_is_plain_strings():
    found = ents("运单号 13905912345，昨天发的，三天了，运费两千五，我是王先生，在福州")
    assert found.as_json() == {
        "waybills": ["13905912345"], "phones": [], "amounts": ["2500"], "durations": ["P3D"],
        "dates": ["2024-11-19"], "cities": ["福州"], "salutation": "王先生",
        "addresses": [], "times": [], "nth_days": [],
    }


def test_repeats_are_kept_once():
    assert ents("单号 12345678，再说一遍单号 12345678").waybills == ("12345678",)


@pytest.mark.parametrize("text, amounts", [
    ("保价100001要多少钱", ["100001"]),  # six digits after a fee word: money, not a waybill
    ("代收100000手续费多少", ["100000"]),
    ("保价10万零1块", ["100001"]),
    ("1万5千", ["15000"]),
    ("二十万零五百", ["200500"]),
    ("代收 -5000 元", ["-5000"]),  # the sign is kept, for the fee desk to refuse
    ("代收2000-3000", ["2000", "3000"]),  # a dash between two figures is no minus sign
    ("How much is the COD fee for 5000 yuan?", ["5000"]),
])
def test_amounts_in_every_form(text, amounts):
    assert [str(a) for a in ents(text).amounts] == amounts


@pytest.mark.parametrize("text, days", [("运费500，第5天，上海", [5]), ("运费300元，第十天，南昌", [10]), ("第4天去提", [4])])
def test_nth_days(text, days):
    assert list(ents(text).nth_days) == days


def test_address_and_delivery_time_from_a_long_message():
    found = ents("货昨天就到福州了，运单SH20261188，地址福州市鼓楼区五四路100号，明天上午在家，电话13800001111，我姓李")
    assert found.addresses == ("福州市鼓楼区五四路100号",)
    assert found.times == ("明天上午",)
    assert found.salutation == "李先生/女士"


@pytest.mark.parametrize("text", ["1" * 50_000, "一" * 50_000, "9." * 50_000,
                                  # a number, then a long run of spaces: one pattern split the spaces between
                                  # its two optional runs of space every way it could, another rescanned them from
                                  # each position (about a minute each)
                                  "1" * 50_000 + " " * 50_000, " " * 100_000, "1 " * 50_000])
def test_long_runs_take_linear_time(text):
    """A 100 KB run of digits used to take minutes (a pattern rescanned the run from every position)."""
    import time

    started = time.process_time()
    ents(text)
    assert time.process_time() - started < 2.0


def test_a_number_typed_with_spaces_between_its_characters_is_read_whole():
    """Probe 3 (C163): 运单号 S H 5 5 6 6 7 7 8 8 was refused as a malformed waybill."""
    found = ents("运单号 S H 5 5 6 6 7 7 8 8，电话 1 3 9 0 5 9 8 1 2 6 2")
    assert found.waybills == ("SH55667788",) and found.phones == ("13905981262",)
    assert ents("选 1 2 3").waybills == () and ents("a b c d").waybills == ()


@pytest.mark.parametrize("text, value", [
    ("十", "10"), ("十二", "12"), ("二十五", "25"), ("一百零五", "105"), ("一百二十三", "123"), ("三百五", "350"),
    ("两千五", "2500"), ("两千零五", "2005"), ("一千零五十", "1050"), ("一万二", "12000"), ("三万五千", "35000"),
    ("两万零五百", "20500"), ("3万5", "35000"), ("1.2万", "12000"), ("壹仟贰佰", "1200"), ("一亿二千万", "120000000"),
    ("一千二百三十四万五千六百七十八", "12345678"), ("半", "0.5"),
])
def test_chinese_numerals_read_as_spoken(text, value):
    assert number(text) == Decimal(value)


@pytest.mark.parametrize("text", ["七八", "一两", "十十", "百", "千五", "两万多", "十几", "万"])
def test_what_is_no_number_is_not_read_as_one(text):
    assert number(text) is None


def test_a_number_said_digit_by_digit_is_read_as_digits():
    """Voice input writes a phone as 一三八一二三四五六七八 (幺 for 1, 洞 for 0); a Chinese amount stays money."""
    assert extract("我电话一三八一二三四五六七八").phones == ("13812345678",)
    assert extract("电话幺三九洞洞洞洞一二三四").phones == ("13900001234",)
    assert extract("一二三四五六").phones == () and extract("代收两千五百").amounts == (Decimal("2500"),)


def test_fen_bie_is_no_unit_of_time():
    """"代收5000和保价5000分别多少钱": both amounts are money (分 in 分别 is not minutes)."""
    assert [value for _, value in extract("代收5000和保价5000分别多少钱").money] == [Decimal("5000"), Decimal("5000")]


def test_a_day_the_goods_are_needed_by_is_a_time():
    """Probe 4 (C13): "急 客户后天要" answers when the goods must arrive; "后天要发货" tells no such time."""
    assert ents("急 客户后天要").times == ("后天",)
    assert ents("后天要发货").times == () and ents("明天要下雨").times == ()


def test_a_time_standing_alone_among_other_answers_is_a_time():
    """Probe 8 (C47): "地址是…金山路5号 明天下午 电话…" gives the time too; "下午就把货交了" and "昨天下午 司机来了" tell when
    something happened."""
    assert ents("地址是厦门湖里区金山路5号 明天下午 电话13799990000").times == ("明天下午",)
    assert ents("下午就把货交了").times == () and ents("昨天下午 司机来了").times == ()


def test_a_time_the_goods_were_brought_to_the_site_is_no_time_they_must_arrive():
    """Probe 14 (C36): "我特地赶在六点前送到网点" was saved as the time the goods must arrive; a time to deliver by
    ("下午三点前送到网点", "明天上午送到我家") still is one."""
    assert ents("说好的昨晚装车的 我特地赶在六点前送到网点 结果今天问还没走").times == ()
    assert ents("下午三点前就送到网点了").times == ()
    assert ents("下午三点前送到网点 客户要").times == ("下午三点前",) and ents("明天上午送到我家").times == ("明天上午",)


def test_a_waybill_after_an_ellipsis_is_a_waybill_and_a_decimal_is_not():
    """Probe 15 (C3): "单号我找找…SH20261177" was refused as a malformed waybill."""
    assert ents("单号我找找…SH20261177").waybills == ("SH20261177",)
    assert ents("单号我找找...SH20261177").waybills == ("SH20261177",)
    assert ents("重量是1.2345678").waybills == ()
