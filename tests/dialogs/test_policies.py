"""Fee and policy knowledge: the shipped file is valid, every fee boundary holds, figures live in the YAML,
and each broken fixture yields its exact error lines."""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from dialogs.content import ContentError, texts_in
from dialogs.policies import (
    DEFAULT_FILE,
    TOPIC_IDS,
    Quote,
    UnknownCity,
    cod_fee,
    find_region,
    insurance_fee,
    load_policies,
    membership_fee,
    storage_fee,
    topic_answers,
)
from dialogs.schema import Provenance

BAD = Path(__file__).parent / "bad_policies"
# Words the document site's synonym replacer put in; a customer must never read them.
GARBLED = ["企业", "告知", "贯彻", "日勺", "阐明", "同步", "联络", "措施", "文献", "状况", "极积极", "平常", "2023"]


@pytest.fixture(scope="module")
def policies():
    return load_policies()


# -- the shipped file ------------------------------------------------------------------------


def test_shipped_file_has_every_topic(policies):
    assert TOPIC_IDS == ("cod", "membership", "insurance", "storage", "invoice", "labels")
    assert list(policies.topics) == list(TOPIC_IDS)


def test_every_topic_has_many_distinct_examples(policies):
    seen: dict[str, str] = {}
    for topic_id, topic in policies.topics.items():
        assert len(set(topic.examples)) == len(topic.examples), topic_id
        assert len(topic.examples) >= 25, topic_id
        for example in topic.examples:
            assert example not in seen, f"{example!r} is in both {seen.get(example)} and {topic_id}"
            seen[example] = topic_id


def test_answers_render_in_restored_wording(policies):
    for topic_id in TOPIC_IDS:
        answers = topic_answers(topic_id, policies)
        assert list(answers) == list(policies.topics[topic_id].answers)
        for answer_id, said in answers.items():
            assert said, (topic_id, answer_id)
            assert "{" not in said and "}" not in said, (topic_id, answer_id)
            for word in GARBLED:
                assert word not in said, (topic_id, answer_id, word)


def test_manual_and_draft_texts_are_both_present_and_manual_ones_name_a_section(policies):
    provenances = {text.provenance for _, text in texts_in(policies)}
    assert provenances == {Provenance.manual, Provenance.draft}
    for path, text in texts_in(policies):
        if text.provenance is Provenance.manual:
            assert text.source and text.source.startswith("第二章"), path


def test_cod_fee_table_is_rendered_from_the_figures(policies):
    assert topic_answers("cod", policies)["fees"] == (
        "代收货款手续费收取标准（按每笔代收金额）：\n"
        "- 2000 元以下（含 2000 元）：5 元（保底 5 元）\n"
        "- 2000 元以上、10000 元以下（含 10000 元）：按代收金额的 3‰ 收取\n"
        "- 10000 元以上：30 元（封顶 30 元）"
    )


def test_the_2000_boundary_is_marked_as_a_reading_of_a_damaged_source(policies):
    assert policies.cod.small_limit == Decimal(2000)
    assert "2023" in (policies.cod.answers["fees"].source or "")
    raw = DEFAULT_FILE.read_text(encoding="utf-8")
    before = raw[: raw.index("small_limit: &small_limit")]
    assert "2023" in before[before.rindex("\n\n"):]  # the comment right above the setting says why


def test_places_the_manual_does_not_name_are_kept_apart_as_drafts(policies):
    regions = {r.id: r for r in policies.storage.regions}
    assert regions["fujian"].places == ["福建", "汕头", "温州"]
    assert {"福州", "厦门", "泉州", "漳州", "莆田", "三明", "南平", "龙岩", "宁德"} <= set(regions["fujian"].draft_places)
    assert {"上海", "浙江", "江苏", "武汉", "长沙", "合肥", "芜湖", "南昌"} <= set(regions["deltas"].places)
    assert {"广东", "广州", "深圳", "东莞", "佛山", "珠海", "中山", "惠州", "江门"} <= set(regions["deltas"].draft_places)
    assert {"沈阳", "郑州", "西安", "重庆", "成都", "山东"} <= set(regions["north"].places)


# -- COD ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, fee, rule",
    [
        ("0.01", "5.00", "small"),
        ("2000", "5.00", "small"),
        ("2000.01", "6.00", "proportional"),
        ("5000", "15.00", "proportional"),
        ("9999.99", "30.00", "proportional"),
        ("10000", "30.00", "proportional"),
        ("10000.01", "30.00", "cap"),
        ("1000000", "30.00", "cap"),
    ],
)
def test_cod_fee_at_every_boundary(policies, amount, fee, rule):
    quote = cod_fee(Decimal(amount), policies)
    assert (quote.amount, quote.rule) == (Decimal(fee), rule)
    assert quote.amount.as_tuple().exponent == -2


def test_cod_fee_rounds_half_up(policies):
    assert cod_fee(Decimal("2001.50"), policies).amount == Decimal("6.00")  # 6.0045
    assert cod_fee(Decimal("2005"), policies).amount == Decimal("6.02")  # 6.015


def test_cod_fee_accepts_int_str_and_float(policies):
    assert cod_fee(5000, policies).amount == cod_fee("5000", policies).amount == cod_fee(5000.0, policies).amount


@pytest.mark.parametrize(
    "amount, explanation",
    [
        ("1500", "代收金额 1500 元，不超过 2000 元，每笔收取 5 元：5.00 元"),
        ("5000", "代收金额 5000 元，超过 2000 元且不超过 10000 元，按代收金额的 3‰ 收取：15.00 元"),
        ("20000.5", "代收金额 20000.5 元，超过 10000 元，每笔封顶收取 30 元：30.00 元"),
    ],
)
def test_cod_fee_explains_its_rule(policies, amount, explanation):
    assert cod_fee(Decimal(amount), policies).explanation == explanation


@pytest.mark.parametrize("amount", [0, "-1", "abc", "NaN", "Infinity", True, None])
def test_cod_fee_refuses_amounts_that_are_not_positive_numbers(policies, amount):
    with pytest.raises(ValueError):
        cod_fee(amount, policies)


# -- insurance ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "declared, fee, rule",
    [
        ("100", "5.00", "minimum"),
        ("999.99", "5.00", "minimum"),  # 4.99995 by the rate, under the 5 元 minimum
        ("1000", "5.00", "rate"),
        ("1000.01", "5.00", "rate"),  # 5.00005
        ("1001", "5.01", "rate"),  # 5.005, half up
        ("2000", "10.00", "rate"),
    ],
)
def test_insurance_fee_where_the_rate_crosses_the_minimum(policies, declared, fee, rule):
    quote = insurance_fee(Decimal(declared), policies)
    assert (quote.amount, quote.rule) == (Decimal(fee), rule)


def test_insurance_fee_explains_rate_and_minimum(policies):
    assert insurance_fee(Decimal("999.99"), policies).explanation == (
        "保价金额 999.99 元，按 0.5% 计算不足每票最低收费 5 元，按最低收费收取：5.00 元"
    )
    assert insurance_fee(Decimal("2000"), policies).explanation == "保价金额 2000 元，按 0.5% 收取保价费：10.00 元"


@pytest.mark.parametrize(
    "declared, fee, approvals",
    [
        ("100000", "500.00", ()),
        ("100000.01", "500.00", ("manager_check",)),
        ("200000", "1000.00", ("manager_check",)),
        ("200000.01", "1000.00", ("manager_check", "group_filing")),
    ],
)
def test_insurance_fee_reports_the_approvals_a_single_item_needs(policies, declared, fee, approvals):
    quote = insurance_fee(Decimal(declared), policies)
    assert quote.amount == Decimal(fee)
    assert quote.approvals == approvals
    assert len(quote.notes) == len(approvals)


def test_insurance_approval_notes_say_who_checks(policies):
    assert insurance_fee(Decimal("250000"), policies).notes == (
        "单件货物保价金额超过 10 万元的，按规定由当地经理亲自把关审核后为您办理。",
        "单件货物保价金额超过 20 万元的，我们还会当场向集团安全办征询，并报集团客服部立案后再为您办理，请预留一些办理时间。",
    )


def test_insurance_fee_refuses_a_zero_value(policies):
    with pytest.raises(ValueError):
        insurance_fee(0, policies)


# -- storage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "city, region, day4",
    [
        ("福州", "fujian", "20.00"),
        ("汕头", "fujian", "20.00"),
        ("温州", "fujian", "20.00"),
        ("上海", "deltas", "10.00"),
        ("广州", "deltas", "10.00"),
        ("芜湖", "deltas", "10.00"),
        ("北京", "north", "6.00"),
        ("成都", "north", "6.00"),
        ("青岛", "north", "6.00"),
    ],
)
def test_storage_fee_is_free_on_day_3_and_charged_on_day_4(policies, city, region, day4):
    free = storage_fee(Decimal(200), 3, city, policies)
    assert isinstance(free, Quote)
    assert (free.amount, free.rule) == (Decimal("0.00"), "free")
    charged = storage_fee(Decimal(200), 4, city, policies)
    assert isinstance(charged, Quote)
    assert (charged.amount, charged.rule) == (Decimal(day4), region)


def test_storage_fee_counts_every_day_beyond_the_free_days(policies):
    assert storage_fee(Decimal(200), 0, "福州", policies).amount == Decimal("0.00")
    assert storage_fee(Decimal(200), 6, "福州", policies).amount == Decimal("60.00")  # 3 days x 10 %
    assert storage_fee(Decimal("33.33"), 4, "上海", policies).amount == Decimal("1.67")  # 1.6665, half up


def test_storage_fee_explains_its_rule(policies):
    assert storage_fee(Decimal(200), 3, "福州", policies).explanation == (
        "通知当天算第 1 天，第 3 天来提还在 3 天的免费保管期内，不收保管费（0.00 元）。"
    )
    assert storage_fee(Decimal(300), 5, "上海", policies).explanation == (
        "通知当天算第 1 天，第 5 天来提，超过 3 天的免费保管期 2 天；福建省内往返珠三角、长三角，每逾期一天按运费的 5% 收取："
        "300.00 元 × 5% × 2 天 = 30.00 元。"
    )


def test_storage_fee_asks_again_for_an_unknown_city(policies):
    result = storage_fee(Decimal(200), 4, "拉萨", policies)
    assert isinstance(result, UnknownCity)
    assert result.city == "拉萨"
    assert {"福州", "汕头", "上海", "广州", "北京", "山东"} <= set(result.known)
    # no share is invented for a line the manual does not name: the customer picks the nearest or asks a person
    assert "没有写到拉萨这条线路" in result.message and "福建省内往返京津唐：京津唐、北京" in result.message


def test_storage_fee_within_the_free_days_needs_no_city(policies):
    assert storage_fee(Decimal(200), 3, "拉萨", policies).amount == Decimal("0.00")


@pytest.mark.parametrize(
    "said, region",
    [
        ("福建福州市", "fujian"),
        (" 上 海 ", "deltas"),  # spaces
        ("ＳＨ上海", "deltas"),  # full-width letters
        ("江苏南京", "deltas"),  # a named province and a draft city of the same region
        ("广东汕头", None),  # 广东 (deltas) and 汕头 (fujian): asked again, not guessed
        ("厦门到北京", None),  # two ends of a line
        ("", None),
    ],
)
def test_find_region_matches_one_region_or_none(policies, said, region):
    found = find_region(said, policies)
    assert (found.id if found else None) == region


@pytest.mark.parametrize("days", [-1, 1.5, True])
def test_storage_fee_refuses_days_that_are_not_whole_and_not_negative(policies, days):
    with pytest.raises(ValueError):
        storage_fee(Decimal(200), days, "福州", policies)


# -- membership --------------------------------------------------------------------------------


def test_membership_fee(policies):
    quote = membership_fee(policies)
    assert (quote.amount, quote.rule) == (Decimal("5.00"), "card")
    assert quote.explanation == "首次办理或补办会员卡，工本费每张 5 元：5.00 元"
    two = membership_fee(policies, cards=2)
    assert (two.amount, two.explanation) == (Decimal("10.00"), "首次办理或补办会员卡，工本费每张 5 元，共 2 张：10.00 元")


# -- figures live in the file ------------------------------------------------------------------


def _edited(tmp_path: Path, old: str, new: str):
    """Loads a copy of the shipped file with one figure changed."""
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    assert len(re.findall(re.escape(old), text)) == 1, f"{old!r} should occur exactly once"
    copy = tmp_path / "policies.yaml"
    shutil.copy(DEFAULT_FILE, copy)
    copy.write_text(text.replace(old, new), encoding="utf-8")
    return load_policies(copy)


def test_changing_the_cod_small_limit_changes_fees_and_answers(policies, tmp_path):
    assert cod_fee(Decimal(2500), policies).amount == Decimal("7.50")
    changed = _edited(tmp_path, "small_limit: &small_limit 2000", "small_limit: &small_limit 3000")
    quote = cod_fee(Decimal(2500), changed)
    assert (quote.amount, quote.rule) == (Decimal("5.00"), "small")
    assert quote.explanation == "代收金额 2500 元，不超过 3000 元，每笔收取 5 元：5.00 元"
    assert cod_fee(Decimal("3000.01"), changed).amount == Decimal("9.00")
    assert "- 3000 元以下（含 3000 元）：5 元" in topic_answers("cod", changed)["fees"]


def test_changing_the_insurance_rate_changes_fees_and_answers(policies, tmp_path):
    changed = _edited(tmp_path, "rate: 0.005", "rate: 0.01")
    assert insurance_fee(Decimal(2000), changed).amount == Decimal("20.00")
    assert insurance_fee(Decimal(499), changed).rule == "minimum"
    assert insurance_fee(Decimal(500), changed).rule == "rate"
    assert "按保价金额的 1% 收取" in topic_answers("insurance", changed)["fee"]


def test_changing_the_free_days_and_a_share_changes_storage(policies, tmp_path):
    changed = _edited(tmp_path, "share: 0.03", "share: 0.04")
    assert storage_fee(Decimal(200), 4, "北京", changed).amount == Decimal("8.00")
    changed = _edited(tmp_path, "free_days: 3\n", "free_days: 5\n")
    assert storage_fee(Decimal(200), 5, "北京", changed).amount == Decimal("0.00")
    assert "超过 5 天之后" in topic_answers("storage", changed)["rule"]


# -- broken files ------------------------------------------------------------------------------

EXPECTED = {
    "yaml_syntax": ["yaml_syntax.yaml:5: (file): not valid YAML: expected ',' or ']', but got ':'"],
    "duplicate_key": ["duplicate_key.yaml:4: storage.free_days: duplicate key (YAML would silently keep only the last one)"],
    "schema": [
        "schema.yaml:14: cod.tiers[0]: a tier needs exactly one of 'fixed' or 'rate'",
        "schema.yaml:27: membership.menu_label: missing required field",
        "schema.yaml:29: membership.menu_lable: unknown field (did you mean 'menu_label'?)",
        "schema.yaml:46: insurance.rate: Input should be a valid decimal",
        "schema.yaml:73: storage.regions[0].share: Input should be less than or equal to 1",
        "schema.yaml:86: invoice.answers.deadline: a text taken from the manual must name its section in 'source'",
        "schema.yaml:105: labels.penalties[0].amount: Input should be greater than or equal to 0",
    ],
    "cross_checks": [
        "cross_checks.yaml:20: cod.tiers[1].above: must equal the previous tier's up_to (2000): tiers must leave no gap or overlap",
        "cross_checks.yaml:12: cod.small_limit: must equal the first tier's up_to (2000)",
        "cross_checks.yaml:57: insurance.approvals[1].above: must be more than the previous approval's limit (200000): "
        "list them from low to high",
        "cross_checks.yaml:91: storage.regions[1].draft_places[1]: '温州' is already listed under region 'fujian': "
        "a place belongs to one region",
        "cross_checks.yaml:125: labels.company_share: finder_share and company_share must add up to 1 (now 0.9)",
        "cross_checks.yaml:49: insurance.answers.fee.text: template uses unknown filter 'percnt' (did you mean 'percent'?)",
        "cross_checks.yaml:116: labels.answers.unsafe.text: template does not render: "
        "access to attribute '__class__' of 'list' object is unsafe.",
        "cross_checks.yaml:18: cod.tiers[0].explain.text: template uses unknown name 'amout' (did you mean 'amount'?) "
        "(known: amount, answers, ask, charged_differs, examples, fee, handover_day, manual_section, menu_label, name, "
        "payout_months, small_limit, tier, tiers, words)",
        "cross_checks.yaml:41: membership.quotes.card.text: broken template (line 1 of the text): unexpected '}'",
        "cross_checks.yaml:94: storage.quotes.charged.text: template does not render: "
        "'dialogs.policies.Region object' has no attribute 'shar'",
    ],
}


def test_every_fixture_has_expectations():
    assert {p.stem for p in BAD.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_reports_file_line_and_field(name, monkeypatch):
    monkeypatch.chdir(BAD)  # files are shown relative to the working directory
    with pytest.raises(ContentError) as caught:
        load_policies(BAD / f"{name}.yaml")
    assert [str(p) for p in caught.value.problems] == EXPECTED[name]


def test_a_file_that_is_not_a_mapping_or_not_there(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "list.yaml").write_text("- cod\n- storage\n", encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_policies(tmp_path / "list.yaml")
    assert [str(p) for p in caught.value.problems] == ["list.yaml:1: (file): expected a mapping of fields at the top of the file"]
    with pytest.raises(ContentError) as caught:
        load_policies(tmp_path / "missing.yaml")
    assert [str(p) for p in caught.value.problems] == ["missing.yaml: (file): cannot read: No such file or directory"]
