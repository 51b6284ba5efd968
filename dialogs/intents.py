"""Routing a customer's free text to a category or topic: a small linear model trained at start-up
from the example messages in scripts_yaml/.

Features are TF-IDF weighted character n-grams of the folded text, which cope with unsegmented
Chinese, dialect and mixed English, plus n-grams of its toneless pinyin, so that a homophone typo
(运但号, 太度, 理陪) still matches the word it stands for. A multinomial logistic regression
turns them into a probability per label; the highest is the confidence."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml
from pydantic import Field, ValidationError

from dialogs.content import DEFAULT_DIR, ContentError, load_content
from dialogs.folding import fold
from dialogs.schema import Strict, Text
from dialogs.yamlfile import ContentFileError, Problem, read_yaml

OTHER = "other"  # the label of messages that are none of kefu's topics
OTHER_FILE = "other.yaml"
POLICIES_FILE = "policies.yaml"
CANDIDATES = 3  # labels offered as "which of these did you mean?"

# Tuned on the evaluation set (see benchmarks/intents_bench.py and `kefu eval-intents`).
CHAR_NGRAMS = (1, 3)
PINYIN_NGRAMS = (1, 2)
PINYIN_WEIGHT = 0.7  # the pinyin block's share next to the characters' (1.0)
REGULARISATION_C = 20.0


@dataclass(frozen=True)
class Classification:
    """The router's answer: the best label, its probability, and the best few labels with theirs."""

    label: str
    confidence: float
    candidates: tuple[tuple[str, float], ...]


# English words customers mix into Chinese ("快递 delay 了", "invoice 怎么申请"), each followed by its
# Chinese so that it shares features with the Chinese examples. Domain words only.
ENGLISH_TERMS = {
    "invoice": "发票", "receipt": "发票", "claim": "理赔", "compensation": "赔偿", "compensate": "赔偿",
    "refund": "退款", "return": "退货", "returned": "退回", "reject": "拒收", "rejected": "拒收",
    "insured": "保价", "insurance": "保价", "insure": "保价", "declared value": "保价", "cod": "代收货款",
    "cash on delivery": "代收货款", "membership": "会员卡", "member card": "会员卡", "storage": "仓储保管",
    "label": "标签", "sticker": "标签", "delay": "延误", "delayed": "延误", "stuck": "滞留",
    "transfer": "转外协", "transferred": "转外协", "carrier": "承运商", "tracking": "物流信息",
    "driver": "司机", "delivery": "送货", "deliver": "送货", "delivered": "送到", "upstairs": "上楼",
    "unload": "卸货", "carry": "搬运", "damaged": "破损", "damage": "破损", "broken": "坏了",
    "missing": "少了", "lost": "丢了", "wrong": "错", "price": "价格", "fee": "费", "cost": "费用",
    "expensive": "贵", "discount": "折扣", "attitude": "态度", "rude": "没礼貌", "staff": "员工",
    "goods": "货", "cargo": "货", "package": "货", "parcel": "货", "warehouse": "仓库", "ship": "发货",
    "shipped": "发货", "shipping": "运费", "tonight": "今晚", "today": "今天", "tomorrow": "明天",
    "pick up": "提货", "hello": "你好", "thanks": "谢谢", "thank you": "谢谢",
}
_ENGLISH = re.compile(r"\b(" + "|".join(sorted(map(re.escape, ENGLISH_TERMS), key=len, reverse=True)) + r")\b")
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D]+")


def normalise(text: str) -> str:
    """Folds a message for routing: plain width, simplified, lower case, digit runs as 0, English
    terms followed by their Chinese, emoji dropped unless there is nothing else, single spaces."""
    text = fold(text).lower()
    text = re.sub(r"\d+(?:[.,]\d+)*", "0", text)
    text = _ENGLISH.sub(lambda m: f"{m.group(1)} {ENGLISH_TERMS[m.group(1)]}", text)
    # An emoji tells the mood, not the topic; a message of emoji alone is still something to route.
    without_emoji = _EMOJI.sub(" ", text)
    if re.search(r"\w", without_emoji):
        text = without_emoji
    return re.sub(r"\s+", " ", text).strip()


# -- pinyin ---------------------------------------------------------------------------------------

_pinyin_table: dict[int, str] | None = None
_TONE_MARKS = str.maketrans("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm")


def _syllable(char: str) -> str | None:
    """Returns the toneless pinyin of a Chinese character (its most common reading), or None."""
    global _pinyin_table
    if _pinyin_table is None:
        _pinyin_table = _load_pinyin_table()
    readings = _pinyin_table.get(ord(char))
    return readings.split(",")[0].translate(_TONE_MARKS) if readings else None


def _load_pinyin_table() -> dict[int, str]:
    """Reads pypinyin's table of single characters from the JSON file it ships (25 ms), without
    importing the package, which loads its phrase tables too (0.3 s). Per-character readings
    are what we want anyway: a phrase table would read a typo (运但号) differently from the
    word it stands for."""
    spec = importlib.util.find_spec("pypinyin")
    folder = Path(next(iter(spec.submodule_search_locations or ()), "")) if spec else None
    if folder is not None and (folder / "pinyin_dict.json").exists():
        table = json.loads((folder / "pinyin_dict.json").read_text(encoding="utf-8"))
        return {int(code): readings for code, readings in table.items()}
    from pypinyin.pinyin_dict import pinyin_dict

    return dict(pinyin_dict)


def pinyin_tokens(text: str) -> list[str]:
    """Returns a normalised text as pinyin syllables; Latin words and digits stay as they are."""
    tokens: list[str] = []
    for piece in re.findall(r"[a-z0-9]+|[\u4e00-\u9fff]", text):
        if len(piece) == 1 and "\u4e00" <= piece <= "\u9fff":
            syllable = _syllable(piece)
            if syllable:
                tokens.append(syllable)
        else:
            tokens.append(piece)
    return tokens


# -- the router -----------------------------------------------------------------------------------

class Router:
    """Classifies messages; build it once at start-up with Router.train and share it."""

    def __init__(self, char_vectorizer: Any, pinyin_vectorizer: Any, model: Any):
        self._chars = char_vectorizer
        self._pinyin = pinyin_vectorizer
        self._model = model
        self.labels: tuple[str, ...] = tuple(model.classes_)

    @classmethod
    def train(cls, examples: Mapping[str, Sequence[str]]) -> "Router":
        """Fits the model on example messages per label; needs at least two labels."""
        # Imported here: scikit-learn takes about 1.5 s to import, paid only by whoever trains.
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        texts, labels = [], []
        for label, items in examples.items():
            for item in dict.fromkeys(normalise(t) for t in items):
                if item:
                    texts.append(item)
                    labels.append(label)
        if len(set(labels)) < 2:
            raise ValueError("the router needs examples for at least two labels")
        chars = TfidfVectorizer(analyzer="char", ngram_range=CHAR_NGRAMS, lowercase=False, sublinear_tf=True)
        pinyin = TfidfVectorizer(analyzer=_pinyin_ngrams, lowercase=False, sublinear_tf=True)
        features = _stack(chars.fit_transform(texts), pinyin.fit_transform(texts))
        model = LogisticRegression(C=REGULARISATION_C, max_iter=2000)
        model.fit(features, labels)
        return cls(chars, pinyin, model)

    def classify(self, text: str) -> Classification:
        """Returns the most likely label of one message, with its confidence and the runners-up."""
        return self.classify_many([text])[0]

    def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        """Classifies many messages at once (faster than one by one)."""
        normalised = [normalise(t) for t in texts]
        features = _stack(self._chars.transform(normalised), self._pinyin.transform(normalised))
        results = []
        for text, row, probabilities in zip(normalised, features, self._model.predict_proba(features)):
            if not text or row.nnz == 0:
                # Nothing the model has seen before (gibberish, a lone emoji): no guess at all.
                results.append(Classification(OTHER if OTHER in self.labels else self.labels[0], 0.0, ()))
                continue
            ranked = sorted(zip(self.labels, probabilities), key=lambda pair: -pair[1])
            top = tuple((label, round(float(p), 4)) for label, p in ranked[:CANDIDATES])
            results.append(Classification(top[0][0], float(ranked[0][1]), top))
        return results


def _pinyin_ngrams(text: str) -> list[str]:
    tokens = pinyin_tokens(text)
    low, high = PINYIN_NGRAMS
    return [" ".join(tokens[i:i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]


def _stack(chars: Any, pinyin: Any) -> Any:
    from scipy.sparse import hstack

    return hstack([chars, pinyin * PINYIN_WEIGHT], format="csr")


# -- training examples from the content -----------------------------------------------------------

class OtherTopic(Strict):
    """scripts_yaml/other.yaml: messages that are none of kefu's topics, and the answer to them."""

    # The least confidence at which the router's answer is used; below it the customer chooses
    # among the candidates. Kept here until it moves to shared.yaml.
    threshold: float = Field(gt=0, lt=1)
    # Place names the entity extractor looks for. Kept here until it moves to shared.yaml.
    cities: list[str] = []
    examples: list[str] = Field(min_length=1)
    reply: Text


def load_other(content_dir: Path = DEFAULT_DIR) -> OtherTopic:
    """Reads and checks other.yaml; raises ContentError naming the file, line and field."""
    path = Path(content_dir) / OTHER_FILE
    if not path.exists():
        raise ContentError([Problem(str(path), None, "", "missing: the off-topic examples file")])
    try:
        doc = read_yaml(path, str(path))
    except ContentFileError as exc:
        raise ContentError([exc.problem])
    if not isinstance(doc.data, dict):
        raise ContentError([doc.problem((), "expected a mapping of fields at the top of the file")])
    try:
        return OtherTopic.model_validate(doc.data)
    except ValidationError as exc:
        raise ContentError([doc.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()])


def load_examples(content_dir: Path = DEFAULT_DIR) -> dict[str, list[str]]:
    """Gathers the training messages by label: each category file's examples (label = file stem),
    each topic's examples in policies.yaml (label = topic id) and other.yaml's (label = other).

    Raises ContentError when the content is invalid, or when one message is an example of two labels."""
    content_dir = Path(content_dir)
    examples: dict[str, list[str]] = {cid: list(c.examples) for cid, c in load_content(content_dir).categories.items()}
    problems: list[Problem] = []
    for topic, items in _policy_examples(content_dir / POLICIES_FILE).items():
        if topic in examples:
            problems.append(Problem(str(content_dir / POLICIES_FILE), None, topic, "topic id is also a category id"))
        else:
            examples[topic] = items
    examples[OTHER] = list(load_other(content_dir).examples)
    problems += _shared_examples(examples, content_dir)
    if problems:
        raise ContentError(problems)
    return examples


def _policy_examples(path: Path) -> dict[str, list[str]]:
    """Reads {topic id: {examples: [...], ...}} from policies.yaml, at the top or one level down;
    anything else in the file is not the router's business."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContentError([Problem(str(path), None, "", f"not valid YAML: {exc}")])
    found: dict[str, list[str]] = {}

    def collect(mapping: Any) -> None:
        for key, value in mapping.items():
            if isinstance(value, dict) and isinstance(value.get("examples"), list):
                found[str(key)] = [e.strip() for e in value["examples"] if isinstance(e, str) and e.strip()]

    if isinstance(data, dict):
        collect(data)
        for value in data.values():
            if isinstance(value, dict) and not found:
                collect(value)
    return {topic: items for topic, items in found.items() if items}


def _shared_examples(examples: Mapping[str, Iterable[str]], content_dir: Path) -> list[Problem]:
    """Lists each message that is an example of more than one label (after normalising)."""
    owners: dict[str, set[str]] = {}
    for label, items in examples.items():
        for item in items:
            owners.setdefault(normalise(item), set()).add(label)
    return [
        Problem(str(content_dir), None, "examples", f"'{text}' is an example of several labels: {', '.join(sorted(labels))}")
        for text, labels in owners.items() if len(labels) > 1
    ]
