"""Training: the scenario bank and scoring rules load and are checked; each scoring rule on examples; every
forbidden move caught in polite words; sessions react to the trainee; the graded set's measured figures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dialogs.content import DEFAULT_DIR
from dialogs.practice import Session, load_training, score_replies, topic_texts
from dialogs.practice.content import FORBIDDEN_MOVES
from dialogs.practice.evaluation import GRADES, evaluate, load_graded
from dialogs.schema import Provenance
from dialogs.yamlfile import ContentError

GRADED = Path(__file__).resolve().parent.parent / "data" / "training_graded.yaml"
INDEPENDENT = GRADED.with_name("training_graded_independent.yaml")
SECOND = GRADED.with_name("training_graded_heldout.yaml")  # a second independent writer's; tuned on after its first run
FRESH = GRADED.with_name("training_graded_fresh.yaml")  # a third writer's: never given to whoever wrote the rules
BAD = Path(__file__).parent / "bad_training"
COMPLAINTS = {"attitude", "stranded", "pricing", "transfer", "carrying", "not_loaded", "not_delivered",
              "misrouted", "claim_dissatisfied", "wrong_or_damaged", "returns", "claims"}


@pytest.fixture(scope="module")
def training(content):
    return load_training(DEFAULT_DIR, set(content.categories), topic_texts(content))


def score(training, category: str, *replies: str, scenario: int = 1):
    return score_replies(training, category, training.scenario(category, scenario), list(replies))


def check(result, kind: str, cid: str):
    return next(c for c in result.checks if c.kind == kind and c.id == cid)


def test_every_complaint_category_has_three_customers_of_different_moods(training):
    assert set(training.scenarios) == COMPLAINTS
    for category, scenarios in training.scenarios.items():
        assert len(scenarios) >= 3, category
        assert len({s.mood for s in scenarios}) >= 3, category
        for s in scenarios:
            lines = [s.opening, *s.follow_ups, s.objects, s.contact, s.angrier, s.model_answer]
            assert all(t.provenance is Provenance.draft for t in lines)


def test_a_model_answer_scores_well_and_commits_nothing(training):
    for category, scenarios in training.scenarios.items():
        for n, s in enumerate(scenarios, start=1):
            result = score(training, category, s.model_answer.text, scenario=n)
            assert not result.forbidden, (category, n, result.forbidden)
            assert result.total >= 70, (category, n, result.total, [c for c in result.checks if not c.passed])


# --- each rule on examples

def test_answer_points_name_the_words_that_matched_or_say_missing(training):
    result = score(training, "transfer", "您好，系统查不到转货的详细情况。")
    assert check(result, "point", "system").passed and "查不到" in check(result, "point", "system").reason
    assert not check(result, "move", "ask_contact").passed and check(result, "move", "ask_contact").reason == "没有做到"


def test_points_and_moves_count_across_the_session(training):
    first = score(training, "transfer", "孙先生您好，系统查不到转货详情，请您留下联系方式。")
    both = score(training, "transfer", "孙先生您好，系统查不到转货详情，请您留下联系方式。", "好的，我马上联系外协窗口，查到后第一时间反馈给您。")
    assert not check(first, "move", "feedback").passed and check(both, "move", "feedback").passed
    assert both.total > first.total


def test_courtesy_greeting_honorific_address_modesty(training):
    polite = score(training, "stranded", "张先生您好，非常抱歉，我马上帮您落实。")
    curt = score(training, "stranded", "知道了，你等着吧。")
    for cid in ("greeting", "honorific", "address", "modest"):
        assert check(polite, "courtesy", cid).passed, cid
        assert not check(curt, "courtesy", cid).passed, cid
    assert "你" in check(curt, "courtesy", "honorific").reason
    assert polite.total > curt.total


def test_blaming_the_customer_fails_courtesy(training):
    result = score(training, "wrong_or_damaged", "您好，这是您自己没看清就签收了，我们会核实。")
    assert not check(result, "courtesy", "no_blame").passed


def test_required_moves_per_handling_method(training):
    assert check(score(training, "transfer", "您好，请留下您的联系方式。"), "move", "ask_contact").passed
    assert check(score(training, "attitude", "您好，调查后会把结果反馈给您。"), "move", "feedback").passed
    paid = score(training, "carrying", "您好，搬楼层属于增值服务，需要收费，发货时没有申请。")
    assert check(paid, "point", "paid").passed and check(paid, "point", "not_applied").passed
    assert not check(score(training, "carrying", "您好，我让司机回来给您搬。"), "point", "paid").passed


# --- the manual's forbidden moves, each wrapped in polite words (written for this test, not from the graded set)

POLITE_FORBIDDEN = [
    ("transfer", "send_elsewhere", "孙先生您好，真不好意思，这个您可以打外协公司的电话问问，他们最清楚，谢谢您的理解。"),
    ("transfer", "send_elsewhere", "您好，麻烦您自己联系一下中转站，辛苦您了，谢谢！"),
    ("transfer", "send_elsewhere", "先生您好，这个您找外协那边就可以了，感谢您的耐心。"),
    ("pricing", "send_elsewhere", "您好，价格的问题您可以打我们财务部的电话反映一下，谢谢您。"),
    ("stranded", "send_elsewhere", "张先生您好，非常抱歉，您直接联系始发站窗口催一下会比较快。"),
    ("transfer", "ignore", "您好，非常抱歉，转外协以后就不归我们管了，感谢您的理解。"),
    ("not_delivered", "ignore", "冯先生您好，真的很抱歉，这个我们也没办法，请您谅解。"),
    ("transfer", "ignore", "您好，欢迎使用我们的服务，我们最近推出了会员卡，每张只要5元哦。"),
    ("carrying", "mislead_price", "马先生您好，不好意思，搬上楼是免费的，我这就安排师傅给您搬。"),
    ("pricing", "mislead_price", "赵先生您好，实在抱歉，这单运费我给您打个九折，差价退给您。"),
    ("returns", "mislead_price", "戴先生您好，您放心，这次退货的运费全部由我们公司承担。"),
    ("returns", "promise_disallowed", "潘女士您好，退回的货物我们也可以帮您办理保价，请放心。"),
    ("claims", "promise_disallowed", "石先生您好，请放心，瓷器碎了我们全额赔偿。"),
    ("claims", "promise_disallowed", "您好，您的古董我们可以给您保价，请您放心寄。"),
    ("claims", "promise_disallowed", "女士您好，首饰也能保价的，您放心。"),
]


@pytest.mark.parametrize("category,move,reply", POLITE_FORBIDDEN)
def test_a_forbidden_move_is_caught_in_polite_words(training, category, move, reply):
    result = score(training, category, reply)
    assert move in result.forbidden
    assert result.total == training.scoring.forbidden_cap  # it costs the whole score
    assert check(result, "courtesy", "modest").passed or check(result, "courtesy", "greeting").passed  # polite indeed


def test_every_forbidden_move_of_the_manual_is_tested():
    assert {move for _, move, _ in POLITE_FORBIDDEN} == set(FORBIDDEN_MOVES)


@pytest.mark.parametrize("category,reply", [
    ("transfer", "孙先生您好，您不用自己联系外协，我来联系外协窗口查询，查到后反馈给您。"),
    ("returns", "潘女士您好，按公司规定，客户退货不能办理保价，请您谅解。"),
    ("carrying", "马先生您好，搬楼层是收费的增值服务，不是免费的，发货时没有申请。"),
    ("misrouted", "蒋女士您好，谢谢您，我们会免费上门取回，不用您跑。"),
])
def test_the_right_move_in_the_same_words_is_not_taken_for_the_wrong_one(training, category, reply):
    assert score(training, category, reply).forbidden == []


def test_a_move_quoted_to_apologise_for_it_is_not_committed(training):
    echo = score(training, "transfer", "孙先生您好，上次让您自己去打外协电话是我们做得不对，这次我来联系外协查，有结果反馈给您。")
    assert "send_elsewhere" not in echo.forbidden
    assert "send_elsewhere" in score(training, "transfer", "孙先生您好，您自己去打外协电话问一下吧。").forbidden


def test_a_claim_under_the_condition_that_makes_it_true_is_not_committed(training):
    conditional = score(training, "returns", "戴先生您好，如果确认是我们的责任，退回运费我们承担，我先核实一下再告诉您。")
    assert "mislead_price" not in conditional.forbidden
    assert "mislead_price" in score(training, "returns", "戴先生您好，退回运费我们承担，您放心。").forbidden


def test_a_polite_closing_with_nothing_done_brushes_the_complaint_off(training):
    brushed = score(training, "stranded", "刘女士您好，最近货比较多，感谢您的理解与支持！", scenario=2)
    assert brushed.forbidden == ["ignore"] and "没有任何处理或承诺" in check(brushed, "forbidden", "ignore").reason
    acted = score(training, "stranded", "刘女士您好，我马上联系始发站催一下，感谢您的理解与支持！", scenario=2)
    assert acted.forbidden == []
    # a closing after the complaint was acted on is a closing, not a brush-off
    session = score(training, "stranded", "刘女士您好，我马上联系始发站催一下，发车后通知您。", "好的，感谢您的理解与支持！", scenario=2)
    assert session.forbidden == []


def test_a_thin_reply_that_acts_is_not_off_topic(training):
    assert score(training, "not_loaded", "您好，我们会帮您催的。", scenario=2).forbidden == []


def test_the_customer_does_not_object_to_a_closing_after_the_complaint_was_acted_on(training):
    session = Session(training, "stranded", 1)
    session.answer("张先生您好，我马上联系托运窗口催发，请留下运单号和电话，发车后第一时间通知您。")
    _, line = session.answer("好的，感谢您的理解与支持！")
    assert not line.startswith(training.scenario("stranded", 1).objects.text)


def test_what_we_do_is_not_sending_the_customer_elsewhere(training):
    # the subject said once at the start of the sentence carries over its clauses
    ours = score(training, "stranded", "张先生您好，我已经记下您的单号，这就给始发站打电话催发，发车后马上通知您。")
    assert "send_elsewhere" not in ours.forbidden
    # a move that names 您 is the customer's, whoever suggests it
    assert "send_elsewhere" in score(training, "transfer", "孙先生您好，我建议您直接联系外协问一下。").forbidden


# --- a session, turn by turn

def test_a_customer_asked_for_a_contact_gives_it(training):
    session = Session(training, "transfer", 1)
    _, line = session.answer("孙先生您好，系统查不到，请您留下联系方式，我会第一时间反馈给您。")
    assert line.startswith(training.scenario("transfer", 1).contact.text)


def test_a_customer_given_no_result_gets_angrier(training):
    session = Session(training, "transfer", 1)
    _, line = session.answer("孙先生您好，转外协的货我看一下。")  # on the complaint, but no result promised
    assert line.startswith(training.scenario("transfer", 1).angrier.text)


def test_a_customer_sent_elsewhere_objects_and_the_session_ends_after_its_turns(training):
    session = Session(training, "transfer", 1)
    _, line = session.answer("您好，您可以打外协公司的电话问问。")
    assert line.startswith(training.scenario("transfer", 1).objects.text)
    session.answer("抱歉，我来联系外协，查到后第一时间反馈给您。")
    last, line = session.answer("您放心。")
    assert line is None and session.finished and session.turns == 3
    assert last.total == 0 and last.forbidden == ["send_elsewhere"]  # a forbidden move fails the whole session


# --- measured on the graded set

def test_the_graded_set_is_twenty_scenarios_by_three_grades_or_more():
    graded = load_graded(GRADED)
    scenarios = {(g.category, g.scenario) for g in graded}
    assert len(scenarios) >= 20
    for key in scenarios:
        assert {g.grade for g in graded if (g.category, g.scenario) == key} == set(GRADES)
    assert {g.category for g in graded} == COMPLAINTS


# Measured with `kefu eval-training [--data …]`. The first set: 84/84 pairs (100.0 %), 30/30 forbidden moves,
# 0 false alarms. The independent set was written by someone who had not seen the rules; first measured at
# 92/108 pairs, 15/35 forbidden moves, 3 false alarms, then used to develop the rules (so no longer held
# out): now 106/108, 35/35, 2 false alarms, both labels we read differently: 您去网点办一下退货 and
# 您跟司机商量一下 send the customer to the counter or the driver, as the first set says of
# 您要先去发货的托运窗口办一下手续 and 您直接跟司机师傅私下谈个价.
# The second independent set's one miss: "保价其实是免费的…我们也改不了" is marked ignore, while the first set
# marks the same refusal ("价格是公司定的，我们也改不了") as a partial reply; left as it is.
# The fresh set was never given to whoever wrote the rules (README says how far it is held out); its
# figures are recorded so that a change that makes them worse fails.
@pytest.mark.parametrize("path,pairs,marked,caught,alarms,ranking", [
    (GRADED, 84, 30, 30, 0, 0.95), (INDEPENDENT, 108, 35, 35, 2, 0.95), (SECOND, 108, 37, 36, 0, 0.95),
    (FRESH, 84, 28, 28, 3, 0.95)], ids=["first", "independent", "second-independent", "fresh"])
def test_graded_set_ranking_accuracy_and_forbidden_moves_caught(training, path, pairs, marked, caught, alarms, ranking):
    report = evaluate(training, load_graded(path))
    assert report.pairs == pairs
    assert report.ranking_accuracy >= ranking, report.misranked
    assert report.forbidden_marked == marked and report.forbidden_caught >= caught, report.missed
    assert len(report.false_alarms) <= alarms, report.false_alarms


# --- broken content: exact error lines

EXPECTED = {
    "bad_regex": ["training/scoring.yaml:16: categories.transfer.points.contact.cues[0]: not a valid regular expression: missing ), unterminated subpattern at position 0"],
    "too_few": ["training/scenarios.yaml:1: transfer: needs at least 3 scenarios, has 2"],
    "unknown_field": ["training/scenarios.yaml:3: transfer[1].opening: missing required field",
                      "training/scenarios.yaml:5: transfer[1].openning: unknown field (did you mean 'opening'?)"],
    "unknown_move": ["training/scoring.yaml:6: forbidden: the manual's forbidden move 'ignore' has no patterns",
                     "training/scoring.yaml:16: categories.transfer.moves[0]: unknown move 'feedbak' (did you mean 'feedback'?)"],
    "unknown_point": ["training/scenarios.yaml:6: transfer[2].points[0]: category 'transfer' has no answer point 'contakt' (did you mean 'contact'?)"],
    "brush_off": ["training/scoring.yaml:8: forbidden.ignore.brush_off: brush_off needs actions: the words that show the complaint was acted on",
                  "training/scoring.yaml:9: forbidden.mislead_price.absolute[0]: not a valid regular expression: missing ), unterminated subpattern at position 0"],
    "nested_repeat": ["training/scoring.yaml:7: forbidden.send_elsewhere.patterns[0]: a repeat inside a repeated group: keep patterns linear (it can take exponential time on a long reply)",
                      "training/scoring.yaml:8: forbidden.ignore.actions[0]: a repeat inside a repeated group: keep patterns linear (it can take exponential time on a long reply)"],
}


def test_every_fixture_has_expectations():
    assert {p.name for p in BAD.iterdir() if p.name != "base"} == set(EXPECTED)


def test_the_base_fixture_is_valid(tmp_path):
    shutil.copytree(BAD / "base", tmp_path / "training")
    assert set(load_training(tmp_path, {"transfer"}).scenarios) == {"transfer"}


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_broken_training_content_yields_its_error_lines(fixture, tmp_path, monkeypatch):
    shutil.copytree(BAD / "base", tmp_path / "training")
    for path in (BAD / fixture).iterdir():
        shutil.copy(path, tmp_path / "training" / path.name)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ContentError) as err:
        load_training(tmp_path, {"transfer"})
    assert [str(p) for p in err.value.problems] == EXPECTED[fixture]
