"""Content loading: the shipped files are valid; each broken fixture yields its exact error lines."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dialogs.content import DEFAULT_DIR, ContentError, load_content
from dialogs.schema import Provenance

BAD = Path(__file__).parent / "bad"

# Each fixture replaces attitude.yaml in a copy of the shipped content.
EXPECTED = {
    "unknown_role": ["attitude.yaml:9: handling[0].role: unknown role 'custmer_service' (did you mean 'customer_service'?)"],
    "broken_template": ["attitude.yaml:7: answer_points.reply.text: broken template (line 1 of the text): unexpected '}'"],
    "missing_state": [
        "attitude.yaml:23: flow.states.open.goto: transition to missing state 'finish'",
        "attitude.yaml:24: flow.states.done: unreachable state: no path from 'answer' leads here",
        "attitude.yaml:18: flow: no reachable state ends the conversation ('end: true')",
    ],
    "unknown_replaced_point": ["attitude.yaml:22: faq.who.replaces[0]: no answer point 'replay' (did you mean 'reply'?)"],
    "unreachable_state": ["attitude.yaml:25: flow.states.orphan: unreachable state: no path from 'answer' leads here"],
    "duplicate_key": ["attitude.yaml:25: closing: duplicate key (YAML would silently keep only the last one)"],
    "unknown_field": [
        "attitude.yaml:1: answer_points: missing required field",
        "attitude.yaml:6: answer_point: unknown field (did you mean 'answer_points'?)",
    ],
    "unknown_variable": [
        "attitude.yaml:7: answer_points.reply.text: template uses unknown name 'customer_name' (known: case, category, facts, salutation, step, what)",
        "attitude.yaml:7: answer_points.reply.text: template uses facts.waybill, which this category does not collect",
    ],
    "unknown_filter": ["attitude.yaml:7: answer_points.reply.text: broken template (line 1 of the text): No filter named 'uper'."],
    "unknown_option": ["attitude.yaml:22: closing.text: template compares facts.who with '送货司机', which is not one of its options"],
    "manual_without_source": ["attitude.yaml:17: closing: a text taken from the manual must name its section in 'source'"],
    "confirmed_manual": ["attitude.yaml:17: closing: 'confirmed' is for drafts: a text taken from the manual needs no confirmation"],
    "confirmed_without_by": ["attitude.yaml:12: handling[0].deadline_confirmed.by: missing required field"],
    "yaml_syntax": ["attitude.yaml:9: (file): not valid YAML: expected the node content, but found '-'"],
    "silent_loop": [
        "attitude.yaml:24: flow.states.done: unreachable state: no path from 'answer' leads here",
        "attitude.yaml:18: flow: no reachable state ends the conversation ('end: true')",
        "attitude.yaml:22: flow.states.collect: states loop with no question to the customer: collect → open → collect",
    ],
}


def test_every_fixture_has_expectations():
    assert {p.stem for p in BAD.glob("*.yaml")} == set(EXPECTED)


@pytest.fixture
def broken(tmp_path, monkeypatch):
    """Returns a function that lays out the shipped content with one fixture as attitude.yaml."""

    def lay_out(fixture: str) -> Path:
        folder = tmp_path / "content"
        shutil.copytree(DEFAULT_DIR, folder)
        shutil.copy(BAD / f"{fixture}.yaml", folder / "attitude.yaml")
        return folder

    monkeypatch.chdir(tmp_path)
    return lay_out


def test_shipped_content_is_valid():
    content = load_content()
    assert {"attitude", "stranded", "pricing", "transfer", "carrying"} <= set(content.categories)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_broken_file_is_reported_with_file_line_and_field(broken, fixture):
    folder = broken(fixture)
    with pytest.raises(ContentError) as caught:
        load_content(folder)
    assert [str(p).removeprefix("content/") for p in caught.value.problems] == EXPECTED[fixture]


def _kefu(*args, env_extra, stdin=""):
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60)


def test_validate_command_prints_problems_and_fails(broken):
    folder = broken("unknown_role")
    result = _kefu("validate", "--content", str(folder), env_extra={})
    assert result.returncode == 1
    assert EXPECTED["unknown_role"][0] in result.stderr


def test_kefu_refuses_to_start_on_invalid_content(broken, tmp_path):
    folder = broken("missing_state")
    result = _kefu("chat", env_extra={"KEFU_CONTENT_DIR": str(folder), "KEFU_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
                   stdin="你好\n")
    assert result.returncode == 1
    for line in EXPECTED["missing_state"]:
        assert line in result.stderr
    assert "客服:" not in result.stdout


def test_validate_command_passes_on_shipped_content():
    result = _kefu("validate", env_extra={})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK:")


def test_answer_points_of_the_five_manual_categories_are_marked_manual():
    content = load_content()
    for cid in ("attitude", "stranded", "pricing", "transfer", "carrying"):
        points = content.categories[cid].answer_points.values()
        assert any(p.provenance is Provenance.manual and p.source for p in points), cid
    # carrying's answer point is cut off in the source: its completion is ours.
    assert content.categories["carrying"].answer_points["offer"].provenance is Provenance.draft


def test_checklist_shows_each_step_with_role_deadline_and_provenance():
    result = _kefu("checklist", "attitude", env_extra={})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "服务态度（attitude）— 第四章 一、（一）反映服务态度方面"
    assert lines[1] == "  1. 客服专员，4 小时内：倾听客户的心声，问清事件经过，并向有关方了解调查。  [手册，第四章 一、（一） 2、处理方式]"
    every = _kefu("checklist", env_extra={}).stdout
    assert "[草稿]" in every and every.count("（") >= 12
    assert _kefu("checklist", "nosuch", env_extra={}).returncode == 2


def _fact_samples(category) -> list[dict]:
    """Facts a category's texts may be rendered with: none, and every option of every choice fact."""
    full = {fid: (fact.options[0] if fact.options else "示例") for fid, fact in category.facts.items()}
    samples = [full]  # a text is shown once the facts before it are in (the flow orders them)
    for fid, fact in category.facts.items():
        for option in fact.options or []:
            samples.append({**full, fid: option})
    return samples


@pytest.mark.parametrize("salutation", ["", "王先生", "陈先生/女士"])
def test_no_customer_text_shows_a_form_of_address_placeholder_or_template_leftover(content, salutation):
    """The manual's paper form 先生（女士） is never shown; a customer who gave no name is addressed as 您."""
    from dialogs.content import texts_in
    from dialogs.render import render, template_values

    step = {"role": "客服专员", "deadline": "12月03日 10:30", "doing": "正在核实处理您的问题", "number": 1, "action": "核实",
            "count": 4}
    case = {"status": "处理中", "open": True, "list": ["KF-20261202-0001"]}
    groups = [(content.shared, [{}])] + [(c, _fact_samples(c)) for c in content.categories.values()]
    checked = 0
    for owner, samples in groups:
        for path, text in texts_in(owner):
            for facts in samples:
                values = template_values(salutation, facts, "KF-20261202-0001", step=step, category="货物滞留",
                                         what="联系电话", **case)
                values["case"]["category"] = "货物滞留"
                shown = render(text.text, values)
                checked += 1
                assert "先生（女士）" not in shown and "先生(女士)" not in shown, path
                assert not any(mark in shown for mark in ("{{", "}}", "{%", "None", "，，", "，。")), (path, shown)
                if not salutation:
                    assert not shown.startswith(("好的，，", "您好，，")), (path, shown)
    assert checked > 500


def test_no_fee_or_policy_answer_shows_a_template_leftover(content):
    from dialogs.policies import topic_answers

    for topic_id in content.policies.topics:
        for answer_id, shown in topic_answers(topic_id, content.policies).items():
            assert not any(mark in shown for mark in ("{{", "}}", "{%", "None", "先生（女士）")), (topic_id, answer_id)


def test_checked_content_is_kept_by_its_digest_and_read_back(tmp_path):
    """A start with unchanged content takes the checked content from the cache; a changed file is read again."""
    import shutil

    from dialogs.content import load_content as load

    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    cache = tmp_path / "cache"
    first = load(folder, cache)
    assert len(list(cache.glob("content-*.pickle"))) == 1
    again = load(folder, cache)
    assert again.version == first.version and again.categories.keys() == first.categories.keys()
    shared = folder / "shared.yaml"
    shared.write_text(shared.read_text(encoding="utf-8").replace("盛辉物流", "盛辉物流集团", 1), encoding="utf-8")
    changed = load(folder, cache)
    assert changed.version != first.version and len(list(cache.glob("content-*.pickle"))) == 2
    (folder / "stranded.yaml").write_text("name: [broken\n", encoding="utf-8")
    with pytest.raises(ContentError):
        load(folder, cache)  # a broken file is reported, whatever the cache holds


def _problems_of_a_broken_copy(tmp_path, edits: dict[str, list[tuple[str, str]]]) -> tuple[list[str], dict[str, str]]:
    """Loads a copy of the content with each (old, new) of `edits` made once in its file: the problems as
    shown ("file:line: field: message") and each edited file's text."""
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    texts = {}
    for name, changes in edits.items():
        text = (folder / name).read_text(encoding="utf-8")
        for old, new in changes:
            assert old in text
            text = text.replace(old, new, 1)
        (folder / name).write_text(text, encoding="utf-8")
        texts[name] = text
    with pytest.raises(ContentError) as caught:
        load_content(folder)
    return [str(p).split("/")[-1] for p in caught.value.problems], texts


def _line_of(text: str, word: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if word in line)


def test_routing_lists_name_their_file_line_and_field_when_they_name_no_category_or_topic(tmp_path):
    shown, texts = _problems_of_a_broken_copy(tmp_path, {"shared.yaml": [
        ("    storage: [stranded, not_delivered, tracking]", "    storag: [stranded, not_deliverd]"),
        ("    transfer: [tracking, not_delivered, stranded, misrouted]", "    transfer: [trackng, not_delivered, stranded, misrouted]")]})
    at = {word: _line_of(texts["shared.yaml"], word) for word in ("storag:", "transfer: [trackng")}
    assert shown == [
        f"shared.yaml:{at['transfer: [trackng']}: routing.covers.transfer[0]: no category 'trackng' (did you mean 'tracking'?)",
        f"shared.yaml:{at['storag:']}: routing.fee_stories.storag: no topic 'storag' (did you mean 'storage'?)",
        f"shared.yaml:{at['storag:']}: routing.fee_stories.storag[1]: no category 'not_deliverd' (did you mean 'not_delivered'?)",
    ]


def test_a_disputed_charge_names_a_category_with_a_check_state_and_the_check_state_exists(tmp_path):
    shown, texts = _problems_of_a_broken_copy(tmp_path, {"policies.yaml": [("      check: pricing", "      check: pricin")],
                                                         "pricing.yaml": [("  check: collect", "  check: colect")]})
    assert sorted(shown) == sorted([
        f"policies.yaml:{_line_of(texts['policies.yaml'], 'check: pricin')}: storage.answers.disputed.check: "
        "no category 'pricin' (did you mean 'pricing'?)",
        f"pricing.yaml:{_line_of(texts['pricing.yaml'], 'check: colect')}: flow.check: no state 'colect' (did you mean 'collect'?)",
    ])


def test_whom_a_complaint_is_about_and_fee_questions_name_real_categories(tmp_path):
    shown, texts = _problems_of_a_broken_copy(tmp_path, {"shared.yaml": [
        ("      problems: [attitude, carrying,", "      problems: [attitud, carrying,"),
        ("    insurance: [claims]", "    insurance: [claim]")]})
    at = {word: _line_of(texts["shared.yaml"], word) for word in ("[attitud,", "[claim]")}
    assert sorted(shown) == sorted([
        f"shared.yaml:{at['[attitud,']}: routing.about_whom.driver.problems[0]: no category 'attitud' (did you mean 'attitude'?)",
        f"shared.yaml:{at['[claim]']}: routing.fee_questions.insurance[0]: no category 'claim' (did you mean 'claims'?)",
    ])


def test_goods_told_by_a_trait_need_a_name_to_be_called_by(tmp_path):
    """"只能国外修" tells of the goods: without `called`, kefu would say "国外修属于不予保价的货物"."""
    shown, texts = _problems_of_a_broken_copy(tmp_path, {"policies.yaml": [("      called: 这类进口货物\n", "")]})
    line = _line_of(texts["policies.yaml"], "goods: 在国外才能维修的进口货物")
    assert f"policies.yaml:{line}: insurance.not_insurable[3]: traits need 'called': what the goods are named when a trait" \
           " is what the customer said" in shown, shown


def test_the_hours_told_to_customers_are_the_business_hours(tmp_path):
    shown, texts = _problems_of_a_broken_copy(tmp_path, {"shared.yaml": [("每天 08:30 至 18:00", "每天 09:00 至 18:00")]})
    line = _line_of(texts["shared.yaml"], "每天 09:00 至 18:00")
    assert shown == [f"shared.yaml:{line}: texts.hours.text: does not state business_hours (08:30 to 18:00)"]
