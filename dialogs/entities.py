"""Pulling facts out of a customer's free text: waybill and phone numbers, money, durations, dates,
cities and how to address the customer.

Pure code. The text is folded first (full-width → plain, traditional → simplified); each extractor
then blanks out what it took, in a fixed order (phones, waybills, dates, durations, money), so a
phone number is never read as a waybill and a date is never read as an amount."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, Iterable


from dialogs.folding import fold

HOLE = "\x00"  # fills what an extractor took: not a digit, not a letter, not Chinese

# -- numbers -----------------------------------------------------------------------------------

_CN_DIGITS = "零〇一二两三四五六七八九壹贰叁肆伍陆柒捌玖"
_CN_MAGNITUDES = "十拾百佰千仟万亿"
# A numeral that begins a word is no part of the number before it: "保价一万一共多少" is 10000 and 一共
# (not 一万一, 11000); "一下", "一起", "一直" likewise.
_WORD_AFTER_NUMERAL = "(?![共起下样直般些切定旦律])"
CN_NUMBER = f"[{_CN_DIGITS}十拾]{_WORD_AFTER_NUMERAL}(?:[{_CN_DIGITS}{_CN_MAGNITUDES}]{_WORD_AFTER_NUMERAL})*"
NUMBER = rf"(?:\d+(?:\.\d+)?|{CN_NUMBER})"
# The same, starting only where a number starts: a pattern tried at every position of a long run of
# digits would otherwise rescan the run each time (quadratic: 4096 digits took seconds).
STARTING_NUMBER = rf"(?:(?<![\d.])\d+(?:\.\d+)?|(?<![{_CN_DIGITS}{_CN_MAGNITUDES}]){CN_NUMBER})"


def number(text: str) -> Decimal | None:
    """Reads 12, 1.5, 1,200, 十二, 两千五, 一万二, 1.2万, 3万5 or 半; None when it is no clear number."""
    text = text.replace(",", "")
    if text == "半":
        return Decimal("0.5")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return Decimal(text)
    if not any(c in _CN_MAGNITUDES for c in text):
        # A run of digit characters reads digit by digit in some tools ("七八" → 78, "一两" → 12); in speech
        # such a run is a range ("七八天"), so only a single character is taken.
        if len(text) != 1 or text not in _CN_DIGITS:
            return None
    value = _chinese_number(text)
    return None if value is None else tidy(value)


_CN_VALUES = {**dict.fromkeys("零〇", 0), **dict.fromkeys("一壹", 1), **dict.fromkeys("二两贰", 2),
              **dict.fromkeys("三叁", 3), **dict.fromkeys("四肆", 4), **dict.fromkeys("五伍", 5),
              **dict.fromkeys("六陆", 6), **dict.fromkeys("七柒", 7), **dict.fromkeys("八捌", 8), **dict.fromkeys("九玖", 9)}
_CN_UNITS = {**dict.fromkeys("十拾", 10), **dict.fromkeys("百佰", 100), **dict.fromkeys("千仟", 1000)}
_CN_GROUPS = {"万": 10 ** 4, "亿": 10 ** 8}
_CN_PIECE = re.compile(r"\d+(?:\.\d+)?|.")  # a run of Arabic digits (1.2万), or one character


def _chinese_number(text: str) -> Decimal | None:
    """Reads a number written in Chinese numerals, with Arabic digits allowed before a magnitude: 二十五,
    一百零五, 两千五 (2500: a digit after a magnitude is the next one down, as spoken), 一万二, 3万5, 1.2万;
    None for what is no number (七八, a range; 十十; a magnitude with nothing before it but 十)."""
    total, group, digit = Decimal(0), Decimal(0), None
    unit_before = None  # the magnitude just passed, for the spoken tail (两千五 = 2500, 一万二 = 12000)
    smallest = 10 ** 9  # units fall within a group (千 then 百 then 十)
    last_group = 10 ** 13
    zero = False
    for piece in _CN_PIECE.findall(text):
        if piece[0].isdigit():
            if digit is not None:
                return None
            digit, zero = Decimal(piece), False
        elif piece in _CN_VALUES:
            if _CN_VALUES[piece] == 0:
                if digit is not None:
                    return None
                zero, unit_before = True, None
                continue
            if digit is not None:
                return None  # 七八: a range, not a number
            digit = Decimal(_CN_VALUES[piece])
        elif piece in _CN_UNITS:
            unit = _CN_UNITS[piece]
            if unit >= smallest or (digit is None and unit != 10):
                return None
            group += (digit if digit is not None else 1) * unit
            digit, smallest, unit_before, zero = None, unit, unit, False
        elif piece in _CN_GROUPS:
            size = _CN_GROUPS[piece]
            if size >= last_group or (digit is None and group == 0 and total == 0):
                return None
            group += digit if digit is not None else 0
            total = (total + group) * size if size > 10 ** 4 else total + group * size
            group, digit, smallest, unit_before, last_group, zero = Decimal(0), None, 10 ** 9, size, size, False
        else:
            return None
    if digit is not None:
        group += digit * (unit_before // 10 if unit_before and not zero else 1)
    return total + group


def tidy(value: Decimal) -> Decimal:
    """Writes a whole amount without decimals and a fraction without trailing zeros (12000, 12.5)."""
    if value == value.to_integral_value():
        return Decimal(int(value))
    return value.normalize()


# -- what is found ------------------------------------------------------------------------------

_ISO_UNITS = {"minute": ("T", "M"), "hour": ("T", "H"), "day": ("", "D"), "week": ("", "W"),
              "month": ("", "M"), "year": ("", "Y")}
_UNIT_DAYS = {"minute": Decimal(1) / 1440, "hour": Decimal(1) / 24, "day": Decimal(1), "week": Decimal(7),
              "month": Decimal(30), "year": Decimal(365)}


@dataclass(frozen=True)
class Duration:
    """How long something has lasted, in the customer's own unit ("两个星期" stays 2 weeks)."""

    amount: Decimal
    unit: str  # minute, hour, day, week, month or year

    def __str__(self) -> str:
        """Returns the ISO 8601 form: P3D, PT48H, P2W, P1.5M."""
        time_mark, letter = _ISO_UNITS[self.unit]
        return f"P{time_mark}{tidy(self.amount)}{letter}"

    @property
    def days(self) -> Decimal:
        """Returns the length in days (a month counts 30, a year 365)."""
        return self.amount * _UNIT_DAYS[self.unit]

    def as_timedelta(self) -> timedelta:
        return timedelta(days=float(self.days))


@dataclass(frozen=True)
class Entities:
    """What one message says, each kind in the order it first appears, without repeats."""

    waybills: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    amounts: tuple[Decimal, ...] = ()
    durations: tuple[Duration, ...] = ()
    dates: tuple[date, ...] = ()
    cities: tuple[str, ...] = ()
    salutation: str | None = None  # 王先生, 李女士, 陈先生/女士, or just 先生 / 女士
    addresses: tuple[str, ...] = ()  # 福州市鼓楼区五四路100号
    times: tuple[str, ...] = ()  # when the customer can receive goods: 明天上午, 今天下午六点前
    money: tuple[tuple[int, Decimal], ...] = ()  # each amount with where it starts in the folded text
    nth_days: tuple[int, ...] = ()  # "第5天", "第十天": the day counted from a notice, the notice day being day 1

    def as_json(self) -> dict[str, Any]:
        """Returns plain JSON values: amounts, durations (ISO 8601) and dates (ISO) as strings."""
        return {
            "waybills": list(self.waybills),
            "phones": list(self.phones),
            "amounts": [str(a) for a in self.amounts],
            "durations": [str(d) for d in self.durations],
            "dates": [d.isoformat() for d in self.dates],
            "cities": list(self.cities),
            "salutation": self.salutation,
            "addresses": list(self.addresses),
            "times": list(self.times),
            "nth_days": list(self.nth_days),
        }


# A phone or waybill said digit by digit (一三八一二三四五六七八, voice input): seven or more digit characters in a
# row are read as digits, one for one, so every position in the text stays where it was.
_SPELLED = re.compile(r"[零〇洞幺一二三四五六七八九]{7,}")
_SPELLED_DIGIT = str.maketrans("零〇洞幺一二三四五六七八九", "0001123456789")
# A number typed with a space after every character (S H 5 5 6 6 7 7 8 8): its characters are joined and the
# spaces moved behind them, so the text keeps its length and every position outside the run.
_SPACED = re.compile(r"(?<![A-Za-z\d])(?:[A-Za-z\d] ){5,}[A-Za-z\d](?![A-Za-z\d])")


def _joined(run: re.Match) -> str:
    chars = run.group(0).replace(" ", "")
    return chars + " " * (len(run.group(0)) - len(chars))


def extract(text: str, known_cities: Iterable[str] = (), *, today: date | None = None) -> Entities:
    """Returns the entities in a message; relative dates (昨天, 上周五, 3号) are resolved against
    today, which the caller should give in the business's time zone (default: the machine's date)."""
    folded = _SPACED.sub(_joined, _SPELLED.sub(lambda m: m.group(0).translate(_SPELLED_DIGIT), fold(text)))
    work = _Work(folded)
    phones = _phones(work)
    waybills = _waybills(work)
    addresses = _addresses(work)
    times = _times(work.text)  # before the dates take 明天 out of the text
    nth_days = _nth_days(work)
    dates = _dates(work, today or date.today())
    durations = _durations(work)
    money = _amounts(work)
    return Entities(
        waybills=_unique(waybills), phones=_unique(phones), amounts=_unique([value for _, value in money]),
        durations=_unique(durations), dates=_unique(dates),
        cities=_cities(folded, tuple(known_cities)), salutation=_salutation(folded),
        addresses=_unique(addresses), times=times, money=tuple(money), nth_days=_unique(nth_days),
    )


class _Work:
    """The folded text, with what has been taken blanked out (its length never changes)."""

    def __init__(self, text: str):
        self.text = text

    def take(self, start: int, end: int) -> None:
        self.text = self.text[:start] + HOLE * (end - start) + self.text[end:]

    def before(self, start: int, width: int = 12) -> str:
        return self.text[max(0, start - width):start]

    def after(self, end: int, width: int = 8) -> str:
        return self.text[end:end + width].lstrip(" ")


def _unique(items: list) -> tuple:
    return tuple(dict.fromkeys(items))


# -- phones and waybills ------------------------------------------------------------------------

# "explicitly introduced as a waybill": 运单号 13905912345 is a waybill even though it looks like a phone
_INTRODUCED_AS_WAYBILL = re.compile(
    r"(?:运单|运但|单号|单子|托运单|货单|票号|快递单|waybill|tracking)(?:号码|号)?\s*(?:是|为|:|#|no\.?)?\s*$",
    re.IGNORECASE)


def introduced_as_waybill(text: str, number: str) -> bool:
    """Whether the number is named a waybill where it stands in the (folded) text ("单号6655443322")."""
    at = text.find(number)
    return at >= 0 and bool(_INTRODUCED_AS_WAYBILL.search(text[max(0, at - 12):at]))


_INTRODUCED_AS_PHONE = re.compile(r"(?:电话|手机|座机|联系方式|tel|phone)(?:号码|号)?\s*(?:是|为|:)?\s*$", re.IGNORECASE)

_MOBILE = re.compile(r"(?<![\dA-Za-z+])(?:(?:\+|00)86[ -]?|\((?:\+|00)?86\)\s?)?(1[3-9]\d(?:[ -]?\d{4}){2})(?![\d])")
_LANDLINE = re.compile(r"(?<![\dA-Za-z])(?:(?:\+|00)86[ -]?)?(?:\((0\d{2,3})\)\s?|(0\d{2,3})[ -])(\d{7,8})(?![\d])")
_LANDLINE_BARE = re.compile(r"(?<![\dA-Za-z])(0(?:10|2\d|[3-9]\d{2})\d{7,8})(?![\d])")
_WAYBILL = re.compile(r"(?<![A-Za-z\d])(?<!\d\.)(?<!\d,)(?:([A-Za-z]{1,4})[-—–－]?)?(\d{6,16})(?![\d]|[.,]\d)")  # "货，SH…": a comma after words is no thousands mark
# With a letter prefix, groups of digits may be split by dashes or spaces: FZ-2026-09876, SH 2026 1127 001.
_WAYBILL_SPLIT = re.compile(r"(?<![A-Za-z\d])([A-Za-z]{1,4})[- —–－]?(\d{2,8}(?:[- —–－]\d{2,8}){1,3})(?![\d])")
# Without a prefix only when named a waybill: 单号 2026 1129 0520 (else 2026 11 29 is a date).
_WAYBILL_GROUPS = re.compile(r"(?<![A-Za-z\d])(\d{2,8}(?:[- —–－]\d{2,8}){1,3})(?![\d])")
_MONEY_NEXT = re.compile(r"^(?:元|块|圆|万|千|亿|k|w|rmb|yuan|%|‰)", re.IGNORECASE)
# A number right after one of these is an amount however many digits it has (保价100001, 代收100000).
_MONEY_BEFORE = re.compile(r"(?:保价|代收|运费|货款|货值|价值|金额|赔偿?|付了?|收了|扣了|花了|值|报价|保了|保|手续费|费用)"
                           r"\s*(?:金额|额)?\s*(?:是|为|:|了|有)?\s*$")


def _phones(work: _Work) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for m in _LANDLINE.finditer(work.text):
        found.append((m.start(), (m.group(1) or m.group(2)) + m.group(3)))
        work.take(m.start(), m.end())
    for pattern in (_MOBILE, _LANDLINE_BARE):
        for m in pattern.finditer(work.text):
            digits = re.sub(r"\D", "", m.group(1))
            bare = m.group(0) == m.group(1) and digits == m.group(1)
            if bare and _INTRODUCED_AS_WAYBILL.search(work.before(m.start())):
                continue  # left for the waybills
            found.append((m.start(), digits))
            work.take(m.start(), m.end())
    return [phone for _, phone in sorted(found)]


def _waybills(work: _Work) -> list[str]:
    found = []
    for m in _WAYBILL_SPLIT.finditer(work.text):
        digits = re.sub(r"\D", "", m.group(2))
        if 6 <= len(digits) <= 16:
            found.append(m.group(1).upper() + digits)
            work.take(m.start(), m.end())
    for m in _WAYBILL_GROUPS.finditer(work.text):
        digits = re.sub(r"\D", "", m.group(1))
        if 6 <= len(digits) <= 16 and _INTRODUCED_AS_WAYBILL.search(work.before(m.start())):
            found.append(digits)
            work.take(m.start(), m.end())
    for m in _WAYBILL.finditer(work.text):
        if _MONEY_NEXT.match(work.after(m.end())):
            continue  # 150000元 is money
        if not m.group(1) and _MONEY_BEFORE.search(work.before(m.start(), 8)):
            continue  # 保价100001 is money too
        if len(m.group(2)) <= 8 and not m.group(1) and _INTRODUCED_AS_PHONE.search(work.before(m.start())):
            work.take(m.start(), m.end())  # a local phone number without area code: neither
            continue
        found.append((m.group(1) or "").upper() + m.group(2))
        work.take(m.start(), m.end())
    return found


# -- dates ---------------------------------------------------------------------------------------

_RELATIVE_DAYS = {"大前天": -3, "前天": -2, "昨天": -1, "昨日": -1, "昨儿": -1, "昨晚": -1, "昨夜": -1,
                  "今天": 0, "今日": 0, "今儿": 0, "今早": 0, "今晚": 0, "明天": 1, "明日": 1, "明儿": 1,
                  "明早": 1, "明晚": 1, "后天": 2, "大后天": 3}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
             "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_WEEKS = {"上上": -2, "上": -1, "这": 0, "本": 0, "": 0, "下": 1, "下下": 2}
# A day of the month or a month: 1 to 2 digits, or up to 3 Chinese numerals (三十一), at a number's start.
_DAY = rf"(?:\d{{1,2}}|(?<![{_CN_DIGITS}{_CN_MAGNITUDES}])[{_CN_DIGITS}十拾]{{1,3}}(?![{_CN_DIGITS}{_CN_MAGNITUDES}]))"
_DAY_AHEAD = timedelta(days=7)
_MONTH_DAY_AHEAD = timedelta(days=60)
# 3号楼, 1号线, 5号门 are places, not days.
_NOT_A_DAY = "楼线门库仓口车窗柜台位机桌厅馆院房间单码箱件站厂路街巷弄栋幢座区场道"

_DATE_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("ymd", re.compile(r"(?<!\d)(\d{4})\s*(?:年|-|/|\.)\s*(\d{1,2})\s*(?:月|-|/|\.)\s*(\d{1,2})\s*[日号]?(?!\d)")),
    ("md", re.compile(rf"(?<![\d.])({_DAY})\s*月\s*({_DAY})\s*[日号]")),
    ("md", re.compile(r"(?<![\d/.])(\d{1,2})/(\d{1,2})(?![\d/])")),
    # 11-28 (not 3-5天, a range of days; not 138-1234, a phone's parts)
    ("md", re.compile(r"(?<![\d/.-])(\d{1,2})-(\d{1,2})(?![\d/-]|\s*(?:天|日|个|小时|号|件|箱|点|分|%))")),
    ("ago", re.compile(rf"({STARTING_NUMBER})\s*(?:个)?(?:天|日)\s*(前|以前|之前|后|以后|之后)")),
    ("month_day", re.compile(rf"(上上个?|上个?|这个?|本|下个?)月\s*({_DAY})\s*[日号]")),
    ("week", re.compile(r"(上上|上|这|本|下下|下)?(?:个)?(?:周|星期|礼拜)([一二三四五六日天1-7])")),
    ("relative", re.compile(r"大前天|(?<![以之提从目当面向跟眼事])前天|昨天|昨日|昨儿|昨晚|昨夜|今天|今日|今儿|今早|今晚"
                            r"|明天|明日|明儿|明早|明晚|大后天|(?<![之以然最背身])后天")),
    ("d", re.compile(rf"(?<![\d.月])({_DAY})\s*号(?![{_NOT_A_DAY}])")),
    ("d", re.compile(rf"(?<![\d.月])(\d{{1,2}})\s*日(?![{_NOT_A_DAY}内])")),
]


def _dates(work: _Work, today: date) -> list[date]:
    found: list[tuple[int, date]] = []
    for kind, pattern in _DATE_PATTERNS:
        for m in pattern.finditer(work.text):
            resolved = _resolve(kind, m, today)
            if resolved is not None:
                found.append((m.start(), resolved))
                work.take(m.start(), m.end())
    return [d for _, d in sorted(found)]


def _resolve(kind: str, m: re.Match, today: date) -> date | None:
    if kind == "relative":
        return today + timedelta(days=_RELATIVE_DAYS[m.group(0)])
    if kind == "week":
        monday = today - timedelta(days=today.weekday())
        return monday + timedelta(days=7 * _WEEKS[m.group(1) or ""] + _WEEKDAYS[m.group(2)])
    if kind == "ago":
        n = number(m.group(1))
        if n is None or n != n.to_integral_value() or n > 366:
            return None
        return today + timedelta(days=int(n) * (-1 if "前" in m.group(2) else 1))
    if kind == "month_day":
        day = number(m.group(2))
        shift = {"上上": -2, "上": -1, "这": 0, "本": 0, "下": 1}[m.group(1).rstrip("个")]
        if day is None or day != day.to_integral_value():
            return None
        return _valid(*_add_months(today.year, today.month, shift), int(day))
    if kind == "ymd":
        return _valid(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    day = number(m.groups()[-1])
    if day is None or day != day.to_integral_value():
        return None
    # Customers mostly tell what already happened: a bare day or month-day is the latest one
    # that is not too far ahead ("3号" on the 20th is the 3rd just past; "1月3号" on 20 December
    # is in two weeks; "11月3号" in January was last November).
    if kind == "md":
        month = number(m.group(1))
        if month is None or month != month.to_integral_value():
            return None
        options = [_valid(today.year + k, int(month), int(day)) for k in (-1, 0, 1)]
        ahead = _MONTH_DAY_AHEAD
    else:
        options = [_valid(*_add_months(today.year, today.month, k), int(day)) for k in (-1, 0, 1)]
        ahead = _DAY_AHEAD
    candidates = [d for d in options if d is not None and d <= today + ahead]
    return max(candidates, default=None)


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _add_months(year: int, month: int, k: int) -> tuple[int, int]:
    index = year * 12 + month - 1 + k
    return index // 12, index % 12 + 1


# -- durations -----------------------------------------------------------------------------------

_DURATION_UNITS = {"分钟": "minute", "小时": "hour", "钟头": "hour", "钟": "hour", "天": "day", "日": "day",
                   "周": "week", "星期": "week", "礼拜": "week", "月": "month", "年": "year"}
_DURATION = re.compile(
    rf"(?<!同)(第)?({STARTING_NUMBER}|半)\s*+(个)?(半|多|来)?(整)?\s*+"
    r"(分钟|小时|钟头|(?<=个)钟|天|日(?=内|之内|以内)|周|星期|礼拜|月|年)(半)?")
_DURATION_EN = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)\b",
                          re.IGNORECASE)
_EN_UNITS = {"min": "minute", "hr": "hour", "hou": "hour", "day": "day", "wee": "week", "mon": "month", "yea": "year"}


def _durations(work: _Work) -> list[Duration]:
    found: list[tuple[int, Duration]] = []
    for m in _DURATION.finditer(work.text):
        ordinal, amount_text, _, middle, _, unit_text, half_after = m.groups()
        amount = number(amount_text)
        if amount is None or (amount_text == "半" and unit_text == "天"):
            continue  # "搞了半天" means "a long while"
        unit = _DURATION_UNITS[unit_text]
        if unit == "year" and amount >= 100:
            continue  # 2024年 is a year, not 2024 years
        if ordinal and (unit != "day" or not work.after(m.end()).startswith("了")):
            continue  # "都第六天了" has lasted six days; "第二天晚上" is the next day
        if unit == "month" and not (m.group(3) or amount_text == "半"):
            continue  # 3月 is March; a duration says 3个月
        if middle == "半" or half_after:
            amount += Decimal("0.5")
        found.append((m.start(), Duration(tidy(amount), unit)))
        work.take(m.start(), m.end())
    for m in _DURATION_EN.finditer(work.text):
        unit = next(u for prefix, u in _EN_UNITS.items() if m.group(2).lower().startswith(prefix))
        found.append((m.start(), Duration(tidy(Decimal(m.group(1))), unit)))
        work.take(m.start(), m.end())
    return [d for _, d in sorted(found, key=lambda item: item[0])]


# -- money ---------------------------------------------------------------------------------------

_AMOUNT = re.compile(
    # The space is the currency's: a pattern starting with optional space, tried at each position of a long
    # run of spaces, would rescan the run each time (quadratic).
    r"(?:(¥|rmb|人民币)\s*)?"
    # 1,200 | 12.5 | 1.2万, 3万5, 10万零1, 1万5千 | 两千五, 二十万零五百
    rf"(\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[千万亿](?:零?\d+(?:\.\d+)?)?)*|{CN_NUMBER})"
    r"([kw](?![a-z]))?"
    r"(多|来|余)?"
    r"\s*(块钱|元|块|圆|rmb|人民币|yuan)?",
    re.IGNORECASE)
# A number followed by one of these counts things, times or sizes, not money.
_NOT_MONEY = re.compile(
    r"^(?:件|箱|个|只(?![赔给收要有剩能是])|台|条|包|袋|托|板|车|吨|t(?![a-z])|公斤|斤|千克|kg|克|g(?![a-z])|立方|方|m(?![a-z])"
    r"|米|cm|厘米|mm|公里|km|楼|层|次|遍|趟|天|日|号|周|星期|礼拜|月|年|小时|钟|分(?!别)|秒|点|岁|人|位|张|单|票|家|批|把|双|套"
    r"|瓶|桶|卷|捆|匹|盒|罐|支|根|片|顶|架|辆|部|份|样|种|项|倍|折|成|%|‰|度|寸|尺|码|升|亩|平|户|栋|间|步|头|圈|声|句|下"
    r"|几|足|全|拿|火|字|[:/.*×x]\d)", re.IGNORECASE)
_MONEY_CUE = re.compile(r"收|赔|付|费|钱|价|贵|花|扣|罚|给|要|才|只|元|加|补|退|便宜|多少")


def _amounts(work: _Work) -> list[tuple[int, Decimal]]:
    """Returns each amount with where it starts; an amount written with a minus sign keeps it (负5000)."""
    found = []
    for m in _AMOUNT.finditer(work.text):
        # 两万多 (多, 来, 余: "more than") is read as 20000, the least it can be.
        currency, digits, short_magnitude, _, unit = m.groups()
        value = number(digits)
        if value is None:
            continue
        if short_magnitude:  # 3k, 5w (万)
            value = tidy(value * (1000 if short_magnitude.lower() == "k" else 10000))
        arabic = digits[0].isdigit()
        before = work.before(m.start(2), 1)
        if before and (before.isascii() and before.isalpha() or before in "第#*×/:."):
            continue  # A2驾照, 第300, 60x40, 9:30
        if unit is None and currency is None:
            if _NOT_MONEY.match(work.after(m.end())):
                continue
            if not short_magnitude and not any(c in _CN_MAGNITUDES for c in digits):
                # A bare number: 5000 is money, but a lone 3 is a menu choice, 三 a count.
                if not arabic or value < 10:
                    continue
            elif not arabic and value < 100:
                continue  # 十, 四十: far more often a count or part of an idiom than money
        elif unit == "块" and value < 10 and not _MONEY_CUE.search(work.before(m.start(), 8)):
            continue  # 玻璃碎了三块: pieces, not yuan
        window = work.before(m.start(2), 16).rstrip()  # a window: the text up to each amount would be quadratic
        sign = window[-1:]
        dash = sign in ("-", "−") and window[-2:-1].isdigit()  # 11-28, 2000-3000: a dash between figures, no minus
        found.append((m.start(), -value if sign in ("-", "负", "−") and not dash else value))
    return found


# -- days counted from a notice, addresses and delivery times ------------------------------------

_NTH_DAY = re.compile(rf"第\s*({STARTING_NUMBER})\s*(?:天|日)(?![内了])")


def _nth_days(work: _Work) -> list[int]:
    found = []
    for m in _NTH_DAY.finditer(work.text):
        n = number(m.group(1))
        if n is not None and n == n.to_integral_value() and 0 < n <= 366:
            found.append(int(n))
            work.take(m.start(), m.end())
    return found


_PLACE_CHARS = r"[\u4e00-\u9fff]"
# An address the customer writes out: a district or county, then a road, street or estate, then a number.
_ADDRESS = re.compile(
    rf"(?:{_PLACE_CHARS}{{2,4}}(?:省|市))?{_PLACE_CHARS}{{1,5}}(?:区|县|镇|乡)"
    rf"[\u4e00-\u9fffA-Za-z0-9]{{1,16}}?(?:路|街|道|巷|弄|村|大道|小区|花园|大厦|广场|园区|工业区|市场)"
    rf"[\u4e00-\u9fffA-Za-z0-9#\-]{{0,24}}")
_ADDRESS_SAID = re.compile(r"(?:收货地址|送货地址|地址|送到|送货到|地点)\s*(?:是|为|:|在|改成|改为)?\s*([^,.;!?\s\x00]{4,60})")
_ADDRESS_MARK = re.compile(r"[省市区县镇乡村路街道巷弄号栋幢楼室]|小区|大厦|花园|广场|园区|市场")
_ADDRESS_END = re.compile(r"(?:我?(?:明天|今天|后天|周.|星期.|上午|下午|晚上|全天|随时|都在|在家|电话|手机|联系).*)$")


def _addresses(work: _Work) -> list[str]:
    found = []
    for pattern in (_ADDRESS_SAID, _ADDRESS):
        for m in pattern.finditer(work.text):
            span = m.span(1) if pattern is _ADDRESS_SAID else m.span()
            address = _ADDRESS_END.sub("", work.text[span[0]:span[1]]).strip(HOLE + " ")
            if len(address) >= 4 and HOLE not in address and _ADDRESS_MARK.search(address):
                found.append((span[0], address))
                work.take(*span)
    return [a for _, a in sorted(found)]


_TIME_DAY = r"(?:今天|明天|后天|大后天|今晚|明早|明晚|这周.|下周.|周[一二三四五六日天末]|星期[一二三四五六日天]|礼拜[一二三四五六日天]|(?<![\d\x00])\d{1,2}号)"
_TIME_PART = r"(?:上午|中午|下午|晚上|傍晚|早上|白天|全天|一整天|一天)"
_TIME_CLOCK = r"(?:(?:\d{1,2}|[一二三四五六七八九十]{1,3})(?:点钟|点|:\d{2})半?)"
_TIMES = re.compile(
    rf"{_TIME_DAY}{_TIME_PART}?{_TIME_CLOCK}?(?:前|以前|之前|后|以后|之后|左右|到\S{{1,6}}?点)?"
    rf"|{_TIME_PART}{_TIME_CLOCK}?(?:前|以前|之前|后|以后|之后|左右)?"
    rf"|{_TIME_CLOCK}(?:前|以前|之前|后|以后|之后|左右)"
    r"|随时|什么时候都行|什么时候都可以|都可以|都在家|一直在家|全天都在")


# A time counts when it says when the customer can receive goods or by when they must arrive:
# "明天上午在家", "周五前", "六点以后" — not "下午就把货交了", which tells when something happened.
_TIME_NEED = re.compile(r"^[^,.;!?，。；！？]{0,4}(?:就要|要用|要到|得到|必须到|要货|等着用|要(?=$|[\s,.;!?，。；！？]))")  # 客户后天要
# Goods brought to the site by then, told as done ("六点前就送到网点了"): no time the goods must arrive by
_DROPPED_OFF = re.compile(r"^(?:就|已经|都)?(?:送到|送去|送过去|拉到|拉过去|交到|拿到)(?:了(?:网点|你们|仓库|站点|货站|窗口|营业部)"
                          r"|(?:网点|你们|仓库|站点|货站|窗口|营业部)了)")
_TIME_USE = re.compile(r"^(?:在家|在(?![\u4e00-\u9fff])|有人|方便|可以|都行|都可以|能收|收货|送|到|之前|以前|前|必须|要到|有空|随时)")


_PART_EDGE = " ,.;!?，。；！？\n"


def _times(folded: str) -> tuple[str, ...]:
    found = []
    for m in _TIMES.finditer(folded):
        said = m.group(0)
        if _DROPPED_OFF.match(folded[m.end():m.end() + 9].lstrip()) or folded[max(0, m.start() - 2):m.start()] in ("赶在", "赶着"):
            continue  # "我特地赶在六点前送到网点": when the customer brought the goods, not when they must arrive
        # "地址是… 明天下午 电话…": a time standing as a part of its own is an answer, not a thing that happened
        alone = (m.start() == 0 or folded[m.start() - 1] in _PART_EDGE) and (m.end() == len(folded) or folded[m.end()] in _PART_EDGE)
        if alone or said.endswith(("前", "后", "左右")) or "点" in said or "随时" in said or "都" in said or "在家" in said \
                or _TIME_USE.match(folded[m.end():m.end() + 4].lstrip()) or _TIME_NEED.search(folded[m.end():m.end() + 6]):
            found.append(said)
    return _unique(found)


# -- cities and salutation -----------------------------------------------------------------------

def _cities(folded: str, known: tuple[str, ...]) -> tuple[str, ...]:
    if not known:
        return ()
    pattern, names = _city_pattern(known)
    return _unique([names[m.group(0)] for m in pattern.finditer(folded)])


@lru_cache(maxsize=8)
def _city_pattern(known: tuple[str, ...]) -> tuple[re.Pattern, dict[str, str]]:
    """Matches each known city by its name or its name without 市 (福州市 → 福州), longest first."""
    names: dict[str, str] = {}
    for name in known:
        folded = fold(name).strip()
        for form in (folded, re.sub(r"(?<=..)[市县区]$", "", folded)):
            if form:
                names.setdefault(form, name)
    alternatives = sorted(names, key=len, reverse=True)
    return re.compile("|".join(re.escape(a) for a in alternatives)), names


_COMPOUND_SURNAMES = ("欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "慕容", "尉迟", "公孙", "令狐", "长孙",
                      "宇文", "司徒", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "澹台", "呼延")
_NOT_SURNAMES = set("个位那这你他她的老小是一两其某家们和跟给找对让被")  # 我家先生 is a husband
_SURNAME = "(?:" + "|".join(_COMPOUND_SURNAMES) + r"|[\u4e00-\u9fff])"
_TITLES = {"先生": "先生", "男士": "先生", "女士": "女士", "小姐": "女士", "太太": "女士"}
_SELF = r"(?:我是|我叫|本人是|本人|这边是|这里是|我这边是|我)"
_SELF_TITLED = re.compile(rf"{_SELF}[,\s]*({_SURNAME})?(先生|女士|小姐|太太)")
# "我是泉州的陈老板", "我叫李阿婆": a surname with the title they gave themself, kept as said (a surname is required:
# "我老板让我问" names someone else)
_SELF_NAMED = re.compile(rf"(?:我是|我叫|本人是|这边是|我这边是)[^,.!?\s]{{0,6}}?({_SURNAME})(老板|总|阿婆|阿姨|大姐|大哥|师傅|老师|经理)"
                         rf"(?=$|[,.!?\s的我从在])")
_OPENING_TITLED = re.compile(rf"^(?:你好|您好|hi|hello)?[,.!\s]*({_SURNAME})(先生|女士|小姐)(?=$|[,.!?:\s]|我)", re.IGNORECASE)
_SELF_SURNAME = re.compile(rf"(?:我姓|免贵姓|本人姓|我的姓是)({_SURNAME})")
_SELF_GENDER = re.compile(
    r"(?:我|本人)(?:是)?(?:个|一个)?(男的|女的|男士|女士|男生|女生|男人|女人|老太婆|老太太|老奶奶|老大爷|老头子?|小伙子?|姑娘)"
    r"|(?:^|[,.!\s])(男的|女的|男|女)(?=$|[,.!\s])")
_FEMALE = set("女太婆奶姑")


def _salutation(folded: str) -> str | None:
    """Returns 王先生 / 李女士 when the customer names themself, 陈先生/女士 for a surname alone,
    先生 / 女士 when only the gender is known."""
    for titled in [*_SELF_TITLED.finditer(folded), *_OPENING_TITLED.finditer(folded)]:
        if titled.group(1) not in _NOT_SURNAMES:
            return (titled.group(1) or "") + _TITLES[titled.group(2)]
    named = _SELF_NAMED.search(folded)
    if named and named.group(1) not in _NOT_SURNAMES:
        return named.group(1) + named.group(2)
    surname_match = _SELF_SURNAME.search(folded)
    surname = surname_match.group(1) if surname_match else ""
    gender = _SELF_GENDER.search(folded)
    if gender is None:
        # A surname alone does not say 先生 or 女士: the written form that leaves both open.
        return f"{surname}先生/女士" if surname else None
    word = gender.group(1) or gender.group(2)
    return surname + ("女士" if any(c in _FEMALE for c in word) else "先生")

