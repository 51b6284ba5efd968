"""The intent router trained on the shipped content, its training data, and `kefu classify`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from dialogs.content import DEFAULT_DIR, load_content
from dialogs.intents import OTHER, Router, load_examples, normalise, pinyin_tokens
from dialogs.yamlfile import ContentError

# Our own messages: neither training examples nor evaluation messages.
CLEAR = [
    ("stranded", "货放在你们始发站八天了都没发车，帮我催一下"),
    ("attitude", "你们窗口那个员工对我骂脏话，态度极差"),
    ("pricing", "这次运费怎么收这么贵，比上个月多了一倍"),
    ("carrying", "送货司机不肯帮我把货搬上五楼"),
    ("transfer", "我的货被你们转给外协公司了，现在查不到物流"),
    ("not_loaded", "说好今晚装车发走的，结果车开走了我的货还在"),
    ("not_delivered", "货已经到你们站点了，今天为什么还不派送"),
    ("misrouted", "我的货应该发到长沙，怎么跑到南昌去了"),
    ("claims", "货物损坏了，我要申请理赔"),
    ("claim_dissatisfied", "理赔金额太低了，我不接受这个结果"),
    ("wrong_or_damaged", "收到的货外箱破了，里面的东西也摔坏了"),
    ("returns", "收货人拒收了，我要把货退回去"),
    ("invoice", "我要开增值税专用发票"),
    ("cod", "代收货款的手续费怎么算"),
    ("insurance", "保价费是按货值的多少收"),
    ("storage", "超过三天没提货要收多少保管费"),
    ("labels", "标签应该贴在纸箱的哪个位置"),
    ("membership", "办一张会员卡要多少钱"),
    ("other", "你好，今天天气不错"),
    # a homophone typo, traditional characters, mixed English
    ("attitude", "你们员工太度很恶劣"),
    ("pricing", "運費太貴了，能不能便宜點"),
    ("stranded", "快递 delay 了好几天，一直没发出"),
]
GIBBERISH = ["asdfghjkl", "qwertyuiop", "啊啊啊啊啊", "的的的的", "阿斯顿发噶", "😀😀", "", "   "]


@pytest.fixture(scope="module")
def router():
    return Router.train(load_examples())


@pytest.fixture(scope="module")
def threshold():
    return load_content().shared.routing.threshold


def test_trains_on_every_category_every_topic_and_other(router):
    content = load_content(DEFAULT_DIR)
    assert set(router.labels) == set(content.categories) | set(content.policies.topics) | {OTHER, "vague"}


def test_examples_are_gathered_by_label():
    examples = load_examples()
    content = load_content(DEFAULT_DIR)
    extra = content.extra_examples
    assert examples["stranded"] == content.categories["stranded"].examples + extra.get("stranded", [])
    assert examples["cod"] == content.policies.topics["cod"].examples + extra.get("cod", [])
    assert len(examples[OTHER]) >= 60


@pytest.mark.parametrize("label, text", CLEAR)
def test_routes_clear_messages_confidently(router, threshold, label, text):
    result = router.classify(text)
    assert result.label == label
    assert result.confidence >= threshold


@pytest.mark.parametrize("text", GIBBERISH)
def test_gibberish_is_never_a_confident_complaint_or_topic(router, threshold, text):
    result = router.classify(text)
    assert result.confidence < threshold or result.label == OTHER


def test_classification_ranks_its_candidates(router):
    result = router.classify("运费太贵，司机还不给搬货")
    labels = [label for label, _ in result.candidates]
    scores = [score for _, score in result.candidates]
    assert result.label == labels[0] and len(labels) == 3 and len(set(labels)) == 3
    assert scores == sorted(scores, reverse=True)
    assert 0 <= scores[-1] <= scores[0] <= 1 and abs(result.confidence - scores[0]) < 1e-3
    assert {"pricing", "carrying"} <= set(labels)
    assert all(type(label) is str for label in labels)


def test_classify_many_agrees_with_classify(router):
    texts = [text for _, text in CLEAR[:5]]
    assert [r.label for r in router.classify_many(texts)] == [router.classify(t).label for t in texts]
    assert router.classify_many([]) == []


def test_training_needs_two_labels():
    with pytest.raises(ValueError):
        Router.train({"stranded": ["货没发"]})


def test_a_small_router_trains_and_routes():
    small = Router.train({"a": ["运费太贵", "价格太高", "收费贵"], "b": ["司机骂人", "态度很差", "员工没礼貌"]})
    assert small.classify("运费好贵").label == "a"
    assert small.classify("司机态度差").label == "b"


def test_normalise_folds_width_script_case_digits_english_and_emoji():
    assert normalise("運單號１２３４５ DELAY 了 😤") == "运单号0 delay 延误 了"
    assert normalise("👍") == "👍"  # a message of emoji alone is kept
    assert pinyin_tokens(normalise("运但号")) == pinyin_tokens(normalise("运单号")) == ["yun", "dan", "hao"]


# -- the content the router trains on ------------------------------------------------------------

@pytest.fixture
def content_copy(tmp_path):
    folder = tmp_path / "content"
    shutil.copytree(DEFAULT_DIR, folder)
    return folder


def test_one_message_may_not_teach_two_labels(content_copy):
    stranded = load_content(content_copy).categories["stranded"].examples[0]
    other = content_copy / "other.yaml"
    other.write_text(other.read_text(encoding="utf-8").replace("examples:\n", f"examples:\n  - {stranded}\n", 1),
                     encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_content(content_copy)
    assert "several labels: other, stranded" in str(caught.value)


def test_routing_settings_are_checked(content_copy):
    shared = content_copy / "shared.yaml"
    shared.write_text(shared.read_text(encoding="utf-8").replace("threshold: 0.", "threshold: 1", 1), encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_content(content_copy)
    (problem,) = caught.value.problems
    assert problem.file.endswith("shared.yaml") and problem.field == "routing.threshold" and problem.line


def test_other_reply_is_a_draft_text():
    content = load_content()
    assert content.other.reply.provenance.value == "draft" and "抱歉" in content.other.reply.text
    assert 0 < content.shared.routing.threshold < 1 and "福州" in content.shared.routing.places


# -- the commands --------------------------------------------------------------------------------

def kefu(args: list[str], stdin: str, tmp_path, check: bool = True) -> str:
    """What `kefu ARGS` prints; with check=False, a failure's error output instead (and a failure is required)."""
    env = {**os.environ, "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}"}
    result = subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                            env=env, timeout=120)
    assert (result.returncode == 0) == check, result.stderr
    return result.stdout if check else result.stderr


def test_kefu_classify_prints_one_json_object_per_line(tmp_path):
    lines = ["运单号 13905912345 的货三天了还没发，我是王先生", "", "運費太貴了，收了我兩千五", "asdfghjkl"]
    output = kefu(["classify", "--today", "2024-11-20"], "\n".join(lines) + "\n", tmp_path)
    assert "王先生" in output  # not escaped: ensure_ascii=False
    rows = [json.loads(line) for line in output.splitlines()]
    assert [row["text"] for row in rows] == [line for line in lines if line]
    assert all(set(row) == {"text", "category", "confidence", "entities"} for row in rows)
    first, second, third = rows
    assert first["category"] == "stranded" and 0 <= first["confidence"] <= 1
    assert first["entities"]["waybills"] == ["13905912345"]
    assert first["entities"]["durations"] == ["P3D"] and first["entities"]["salutation"] == "王先生"
    assert second["category"] == "pricing" and second["entities"]["amounts"] == ["2500"]
    assert third["confidence"] < load_content().shared.routing.threshold or third["category"] == OTHER


def test_kefu_eval_intents_prints_the_report(tmp_path):
    data = tmp_path / "eval.yaml"
    data.write_text("messages:\n"
                    "  - {text: 送货司机不给搬上楼, category: carrying}\n"
                    "  - {text: 运费太贵了, category: pricing}\n"
                    "  - {text: 你好, category: pricing}\n", encoding="utf-8")
    output = kefu(["eval-intents", "--data", str(data), "--threshold", "0.5", "--score", "certainty"], "", tmp_path)
    # what issue 9 asks of the report: accuracy, recall per category, the confident-wrong rate
    assert "top-1 accuracy:  66.7% (2/3)" in output
    assert "threshold: certainty ≥ 0.50" in output
    assert "confident-wrong (misroute rate" in output and "pricing → other: 1" in output
    assert "support  precision  recall" in output
    recall = {line.split()[0]: line.split()[-1] for line in output.splitlines() if line.startswith(("carrying ", "pricing "))}
    assert recall == {"carrying": "100.0%", "pricing": "50.0%"}
    assert "at other thresholds of certainty" in output
    # and what the customer gets: 你好 shows the menu, whatever it is labelled
    assert "asked which problem (menu or buttons) 33.3%" in output
    by_confidence = kefu(["eval-intents", "--data", str(data), "--score", "confidence"], "", tmp_path)
    assert f"threshold: confidence ≥ {load_content().shared.routing.threshold:.2f}" in by_confidence


def test_kefu_eval_agreement_compares_labellings_by_split(tmp_path):
    first, second = tmp_path / "ours.yaml", tmp_path / "again.yaml"
    first.write_text("- {text: 货没发, label: stranded, split: dev}\n- {text: 太贵, label: pricing, split: test}\n",
                     encoding="utf-8")
    second.write_text("- {text: 货没发, label: stranded, split: dev}\n- {text: 太贵, label: other, split: test}\n",
                      encoding="utf-8")
    output = kefu(["eval-agreement", str(first), str(second)], "", tmp_path)
    assert "all   ours vs again: 2 messages, same label 50.0%" in output
    assert "dev   ours vs again: 1 messages, same label 100.0%" in output
    second.write_text("- {text: 别的, label: other}\n", encoding="utf-8")
    assert "label different messages" in kefu(["eval-agreement", str(first), str(second)], "", tmp_path, check=False)


# -- the certainty: how often a reading is right, calibrated on held-out examples (issue 9) -------

def test_the_certainty_is_fit_from_held_out_examples_and_falls_with_length(router):
    assert router.certainty_weights is not None  # the shipped examples are enough to cross-validate
    short, long_ = "货三天了没发", "货三天了没发" * 20
    # at one confidence, a long story is less often right than a short message
    assert router.certainty(0.95, short) > router.certainty(0.95, long_)
    # at one length, a higher confidence is more often right
    assert router.certainty(0.99, short) > router.certainty(0.9, short) > router.certainty(0.6, short)
    for text in [short, long_, "asdfghjkl"]:
        result = router.classify(text)
        assert 0 <= result.certainty <= 1
        assert result.certainty == pytest.approx(router.certainty(result.confidence, normalise(text)))


def test_the_certainty_is_calibrated_on_examples_it_was_not_taught(router):
    """The certainty says how often the model is right on messages it never saw, so it sits below the
    probability the model gives a clear message it was trained on (a sure 0.99 is not 99 % right)."""
    result = router.classify("货物损坏了，我要申请理赔")
    assert result.label == "claims"
    assert result.certainty < result.confidence


def test_the_certainty_survives_the_cache(router):
    again = Router.from_arrays(router.to_arrays())
    assert again.certainty_weights == router.certainty_weights
    assert again.classify("运费太贵，司机还不给搬货") == router.classify("运费太贵，司机还不给搬货")


def test_a_router_too_small_to_cross_validate_is_as_certain_as_confident():
    small = Router.train({"a": ["运费太贵", "价格太高", "收费贵"], "b": ["司机骂人", "态度很差", "员工没礼貌"]})
    assert small.certainty_weights is None
    result = small.classify("运费好贵")
    assert result.certainty == result.confidence


def test_a_cache_of_the_previous_model_version_is_refused(router):
    arrays = dict(router.to_arrays())
    arrays["version"] = "2"
    with pytest.raises(ValueError):
        Router.from_arrays(arrays)
