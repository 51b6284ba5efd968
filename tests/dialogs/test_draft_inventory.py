"""The drafts inventory of the shipped content, the matcher that finds a text in what was sent, and the
edit that writes a supervisor's word into a content file without disturbing the rest of it."""

from __future__ import annotations

from datetime import date

import pytest
import yaml

from dialogs.content import DEFAULT_DIR
from dialogs.drafts import (ACTION, CONFIRMED, CORRECTED, DEADLINE, ROLE, TEXT, Change, PatchConflict, apply_changes,
                            current_value, drafts, matcher, unconfirmed)
from dialogs.render import render, template_values
from dialogs.schema import Provenance


def test_every_draft_is_found_at_its_place_in_its_file(content):
    sources = {}
    found = drafts(content)
    for draft in found:
        source = sources.setdefault(draft.file, (DEFAULT_DIR / draft.file).read_text(encoding="utf-8"))
        assert current_value(source, draft.path, draft.field) == draft.value, draft.key
    assert len({d.key for d in found}) == len(found)


def test_inventory_covers_texts_actions_and_every_step_s_role_and_deadline(content):
    found = drafts(content)
    steps = sum(len(c.handling) for c in content.categories.values()) + len(content.shared.handoff.handling)
    assert sum(d.kind == ROLE for d in found) == sum(d.kind == DEADLINE for d in found) == steps
    actions = [s.action for c in content.categories.values() for s in c.handling] + [s.action for s in content.shared.handoff.handling]
    assert sum(d.kind == ACTION for d in found) == sum(a.provenance is Provenance.draft for a in actions)
    manual = {a.text for a in actions if a.provenance is Provenance.manual}
    assert not any(d.value in manual for d in found if d.kind == ACTION)  # the manual's own steps are not drafts
    greeting = next(d for d in found if d.key == "shared.yaml:texts.greeting.text")
    assert (greeting.kind, greeting.category, greeting.value) == (TEXT, None, content.shared.texts.greeting.text)
    intro = next(d for d in found if d.key == "claims.yaml:answer_points.intro.text")
    assert (intro.category, intro.states, intro.place) == ("claims", ("intro",), "回答要点 intro（状态 intro）")
    step = next(d for d in found if d.key == "claims.yaml:handling.2.deadline_hours")
    assert (step.value, step.place) == ("360", "货损货差理赔 第3步（片区客服） 期限（工作小时）")
    doing = next(d for d in found if d.key == "shared.yaml:roles.branch_manager.doing")
    assert doing.value == "正在亲自协调处理"
    assert unconfirmed(content) == found  # nothing is confirmed in the shipped content yet


def test_matcher_finds_every_branch_of_a_template_and_nothing_else(content):
    insurance = content.categories["claims"].answer_points["insurance"].text
    found = matcher(insurance)
    for insured in ("已保价", "只保灭失险", "未保价", "不清楚"):
        shown = render(insurance, template_values("王先生", {"insured": insured, "what": "货物破损"}))
        assert found.shows(f"前面的话。{shown}")
    assert not found.shows(render(content.categories["claims"].answer_points["process"].text, template_values("")))
    greeting = matcher(content.shared.texts.greeting.text)
    assert greeting.shows(content.shared.texts.greeting.text)
    assert greeting.shows(content.shared.texts.greeting.text.removeprefix("您好，"))  # the engine drops a repeated opener
    assert matcher("{{ category }}：{{ what }}") is None  # too little fixed wording to tell


def _change(path, field, was, value=None, **extra) -> Change:
    return Change(f"x.yaml:{'.'.join(map(str, path))}.{field}", "x.yaml", path, field, CORRECTED if value else CONFIRMED,
                  was, value, extra.get("by", "王主管"), date(2026, 12, 2), extra.get("comment"))


SOURCE = """\
# a comment that stays
texts:
  long:
    text: |-
      第一行
      第二行
    provenance: draft
  short: {text: 短句, provenance: draft}
handling:
  - role: customer_service
    action:
      text: 核实  # why
      provenance: draft
    deadline_hours: 4
"""


def test_apply_changes_corrects_in_place_and_records_the_word_beside_it():
    out = apply_changes(SOURCE, [
        _change(("texts", "long"), "text", "第一行\n第二行", "新的第一行\n新的第二行", comment="更清楚"),
        _change(("texts", "short"), "text", "短句"),
        _change(("handling", 0), "role", "customer_service", "branch_manager"),
        _change(("handling", 0), "deadline_hours", "4", "8"),
    ])
    data = yaml.safe_load(out)
    assert data["texts"]["long"] == {"text": "新的第一行\n新的第二行", "provenance": "draft", "confirmed": {
        "by": "王主管", "at": date(2026, 12, 2), "comment": "更清楚", "was": "第一行\n第二行"}}
    assert data["texts"]["short"] == {"text": "短句", "provenance": "draft", "confirmed": {"by": "王主管", "at": date(2026, 12, 2)}}
    step = data["handling"][0]
    assert (step["role"], step["deadline_hours"]) == ("branch_manager", 8)
    assert step["role_confirmed"]["was"] == "customer_service" and step["deadline_confirmed"]["was"] == "4"
    assert out.startswith("# a comment that stays\n") and "text: 核实  # why" in out
    again = apply_changes(out, [_change(("texts", "short"), "text", "短句", by="李经理")])  # a second word replaces the first
    assert yaml.safe_load(again)["texts"]["short"]["confirmed"]["by"] == "李经理" and again.count("confirmed:") == out.count("confirmed:")


def test_a_change_to_a_text_edited_since_is_refused():
    with pytest.raises(PatchConflict, match="the supervisor saw '旧的'"):
        apply_changes(SOURCE, [_change(("texts", "short"), "text", "旧的")])
    with pytest.raises(PatchConflict, match="not in the file"):
        apply_changes(SOURCE, [_change(("texts", "gone"), "text", "短句")])
