"""Routing a customer's free text to a category or topic: a small linear model trained at start-up
from the example messages in scripts_yaml/.

Features are TF-IDF weighted character n-grams of the folded text, which cope with unsegmented
Chinese, dialect and mixed English, plus n-grams of its toneless pinyin, so that a homophone typo
(运但号, 太度, 理陪) still matches the word it stands for. A linear SVM scores each label; a softmax
turns the scores into probabilities, with the temperature that best predicts held-out examples
in cross-validation (temperature scaling). Real messages are messier than the examples, so the
threshold for answering without asking back is chosen on labelled real messages
(`kefu eval-intents`). The confidence is the highest probability, scaled down when the message
is mostly made of character and pinyin pairs the examples never contain (keyboard mashing,
啊啊啊啊), so that an unfamiliar message is not answered with false confidence. The certainty is
the calibrated chance that the label is right (see CERTAINTY below): a probability of 0.99 is right
far less often than 99 % of the time on messages the model was not taught, and less still on long ones."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from dialogs.content import load_content
from dialogs.folding import fold
from dialogs.yamlfile import DEFAULT_DIR

OTHER = "other"  # the label of messages that are none of kefu's topics
CANDIDATES = 3  # labels offered as "which of these did you mean?"
MODEL_VERSION = "3"  # the features and the arrays a trained model is kept as (a cache of another version is retrained)

# Chosen with `kefu eval-intents` and benchmarks/intents_bench.py; see the figures there.
CHAR_NGRAMS = (1, 3)
PINYIN_NGRAMS = (1, 2)
PINYIN_WEIGHT = 0.7  # the pinyin block's share next to the characters' (1.0)
SVM_C = 0.5
CALIBRATION_FOLDS = 5
TEMPERATURES = tuple(0.5 * 1.07 ** i for i in range(72))  # 0.5 … about 60
DEFAULT_TEMPERATURE = 8.0  # when there are too few examples per label to cross-validate
# A message at least this familiar (share of its n-grams seen in the examples) keeps its full
# confidence; a less familiar one gets proportionally less. About 3 % of real messages are below.
FAMILIAR_SHARE = 0.2
# CERTAINTY: the chance that the label is right (Classification.certainty) is a logistic regression
# (Platt scaling) on two things known of every message: the confidence, as log odds, and the message's
# length, as log(1 + characters). It is fit on the examples' cross-validated predictions (each example
# read by a model trained without it), so it says how often the model is right on messages it was not
# taught; a long story is wrong more often than its top probability says. The held-out real messages are
# never used to fit it. It needs at least CERTAINTY_OUTCOMES right and as many wrong held-out readings;
# with fewer, certainty is the confidence itself.
CERTAINTY_OUTCOMES = 10


@dataclass(frozen=True)
class Classification:
    """The router's answer: the best label, its probability, and the best few labels with theirs."""

    label: str
    confidence: float
    candidates: tuple[tuple[str, float], ...]
    # How often the label is right for a message like this one (calibrated, see CERTAINTY): what decides
    # answering without asking back when routing.certainty is set. confidence stays the model's probability.
    certainty: float = 0.0


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

_pinyin_table: dict[str, str] | None = None  # a character's code point, in decimal, to its readings
_TONE_MARKS = str.maketrans("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm")


_syllables: dict[str, str | None] = {}  # _syllable's answers: a character's reading is worked out once


def _syllable(char: str) -> str | None:
    """Returns the toneless pinyin of a Chinese character (its most common reading), or None."""
    try:
        return _syllables[char]
    except KeyError:
        pass
    global _pinyin_table
    if _pinyin_table is None:
        _pinyin_table = _load_pinyin_table()
    readings = _pinyin_table.get(str(ord(char)))
    syllable = _syllables[char] = readings.split(",")[0].translate(_TONE_MARKS) if readings else None
    return syllable


def _load_pinyin_table() -> dict[str, str]:
    """Reads pypinyin's table of single characters from the JSON file it ships (25 ms), without
    importing the package, which loads its phrase tables too (0.3 s). Per-character readings
    are what we want anyway: a phrase table would read a typo (运但号) differently from the
    word it stands for. Its keys stay the JSON's strings: converting 40,000 of them to numbers
    took as long as parsing the file, on the way to a fresh process's first reply."""
    spec = importlib.util.find_spec("pypinyin")
    folder = Path(next(iter(spec.submodule_search_locations or ()), "")) if spec else None
    if folder is not None and (folder / "pinyin_dict.json").exists():
        return json.loads((folder / "pinyin_dict.json").read_text(encoding="utf-8"))
    from pypinyin.pinyin_dict import pinyin_dict

    return {str(code): readings for code, readings in pinyin_dict.items()}


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
    """Classifies messages; build it once at start-up with Router.train (or from_arrays, from a cache)
    and share it. Inference needs numpy only: scikit-learn is imported by training alone."""

    def __init__(self, labels: Sequence[str], char_vocab: Mapping[str, int], char_idf: Any,
                 pinyin_vocab: Mapping[str, int], pinyin_idf: Any, coef: Any, intercept: Any, temperature: float,
                 certainty: Sequence[float] | None = None):
        import numpy as np

        self.labels: tuple[str, ...] = tuple(str(label) for label in labels)
        self._char_vocab, self._pinyin_vocab = dict(char_vocab), dict(pinyin_vocab)
        self._char_idf, self._pinyin_idf = np.asarray(char_idf, float), np.asarray(pinyin_idf, float)
        self._coef, self._intercept = np.asarray(coef, float), np.asarray(intercept, float)
        self.temperature = temperature
        # weights of the confidence's log odds and of log(1 + length), then the bias; None: not fit
        self.certainty_weights: tuple[float, ...] | None = tuple(map(float, certainty)) if certainty is not None else None

    @classmethod
    def train(cls, examples: Mapping[str, Sequence[str]]) -> "Router":
        """Fits the model on example messages per label; needs at least two labels."""
        # Imported here: scikit-learn takes about 2 s to import, paid only by whoever trains.
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.svm import LinearSVC

        texts, labels = [], []
        for label, items in examples.items():
            for item in dict.fromkeys(normalise(t) for t in items):
                if item:
                    texts.append(item)
                    labels.append(label)
        if len(set(labels)) < 2:
            raise ValueError("the router needs examples for at least two labels")
        chars = TfidfVectorizer(analyzer=_char_ngrams, lowercase=False, sublinear_tf=True)
        pinyin = TfidfVectorizer(analyzer=_pinyin_ngrams, lowercase=False, sublinear_tf=True)
        features = _stack(chars.fit_transform(texts), pinyin.fit_transform(texts))
        model = LinearSVC(C=SVM_C, random_state=0).fit(features, labels)
        coef = model.coef_ if len(model.classes_) > 2 else _two_labels(model.coef_)
        intercept = model.intercept_ if len(model.classes_) > 2 else _two_labels(model.intercept_[None, :])[:, 0]
        scores = _cross_validated(features, labels, model.classes_)
        if scores is None:
            return cls(model.classes_, chars.vocabulary_, chars.idf_, pinyin.vocabulary_, pinyin.idf_, coef, intercept,
                       DEFAULT_TEMPERATURE)
        temperature = _fit_temperature(scores, labels, model.classes_)
        certainty = _fit_certainty(texts, labels, model.classes_, scores, temperature)
        return cls(model.classes_, chars.vocabulary_, chars.idf_, pinyin.vocabulary_, pinyin.idf_, coef, intercept,
                   temperature, certainty)

    def to_arrays(self) -> dict[str, Any]:
        """The trained model as plain arrays (for a cache file); from_arrays reads them back."""
        import numpy as np

        def words(vocab: Mapping[str, int]) -> Any:  # as JSON text: a cache file never needs pickle to read
            ordered = [""] * len(vocab)
            for gram, index in vocab.items():
                ordered[index] = gram
            return np.array(json.dumps(ordered, ensure_ascii=False))

        return {"version": np.array(MODEL_VERSION), "labels": np.array(json.dumps(self.labels, ensure_ascii=False)),
                "char_words": words(self._char_vocab), "char_idf": self._char_idf,
                "pinyin_words": words(self._pinyin_vocab), "pinyin_idf": self._pinyin_idf,
                "coef": self._coef, "intercept": self._intercept, "temperature": np.array(self.temperature),
                "certainty": np.array(self.certainty_weights if self.certainty_weights is not None else [], float)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any]) -> "Router":
        if str(arrays["version"]) != MODEL_VERSION:
            raise ValueError(f"a model of version {arrays['version']}, not {MODEL_VERSION}")
        def vocab(words: Any) -> dict[str, int]:
            return {gram: i for i, gram in enumerate(json.loads(str(words)))}

        certainty = [float(w) for w in arrays["certainty"]]
        return cls(json.loads(str(arrays["labels"])), vocab(arrays["char_words"]), arrays["char_idf"],
                   vocab(arrays["pinyin_words"]), arrays["pinyin_idf"], arrays["coef"], arrays["intercept"],
                   float(arrays["temperature"]), certainty or None)

    def classify(self, text: str) -> Classification:
        """Returns the most likely label of one message, with its confidence and the runners-up."""
        return self.classify_many([text])[0]

    def classify_many(self, texts: Sequence[str]) -> list[Classification]:
        """Classifies messages: TF-IDF weights of their n-grams, the linear model's scores, a softmax."""
        import numpy as np

        results = []
        offset = len(self._char_vocab)
        for text in (normalise(t) for t in texts):
            grams, syllables = _char_ngrams(text), pinyin_tokens(text)  # each made once, for the weights and familiarity
            chars = _weights(grams, self._char_vocab, self._char_idf)
            pinyin = _weights(_pinyin_ngrams(text, syllables), self._pinyin_vocab, self._pinyin_idf)
            if not text or (not chars and not pinyin):
                # Nothing the model has seen before (a lone emoji, a script it never saw): no guess.
                results.append(Classification(OTHER if OTHER in self.labels else self.labels[0], 0.0, ()))
                continue
            index = np.array(list(chars) + [offset + i for i in pinyin], dtype=int)
            value = np.array(list(chars.values()) + [PINYIN_WEIGHT * v for v in pinyin.values()])
            scores = self._coef[:, index] @ value + self._intercept
            probabilities = _softmax(scores[None, :], self.temperature)[0]
            scale = min(1.0, self._familiarity(grams, syllables) / FAMILIAR_SHARE)
            ranked = sorted(zip(self.labels, probabilities * scale), key=lambda pair: -pair[1])
            top = tuple((label, round(float(p), 4)) for label, p in ranked[:CANDIDATES])
            confidence = float(ranked[0][1])
            results.append(Classification(top[0][0], confidence, top, self.certainty(confidence, text)))
        return results

    def certainty(self, confidence: float, normalised: str) -> float:
        """The calibrated chance that a label read with this confidence in this message is right (see
        CERTAINTY); the confidence itself when the router had too few examples to fit it."""
        if self.certainty_weights is None:
            return confidence
        return _logistic(self.certainty_weights, _certainty_features(confidence, normalised))

    def familiarity(self, normalised: str) -> float:
        """Returns the share of a normalised message's character pairs and triples and pinyin
        pairs that occur in the examples (its characters, for a one-character message)."""
        return self._familiarity(_char_ngrams(normalised), pinyin_tokens(normalised))

    def _familiarity(self, grams: list[str], syllables: list[str]) -> float:
        """familiarity() of a message's character n-grams and pinyin syllables."""
        pairs = [g for g in grams if len(g) >= 2]
        spoken = [" ".join(pair) for pair in zip(syllables, syllables[1:])]
        known = [g in self._char_vocab for g in pairs] + [g in self._pinyin_vocab for g in spoken]
        if not known:
            known = [g in self._char_vocab for g in grams]
        return sum(known) / len(known) if known else 0.0


def _certainty_features(confidence: float, normalised: str) -> tuple[float, float]:
    """What the certainty is computed from: the log odds of the confidence, and log(1 + characters)."""
    from math import log

    p = min(max(confidence, 1e-6), 1 - 1e-6)
    return log(p / (1 - p)), log(1 + len(normalised))


def _logistic(weights: Sequence[float], features: Sequence[float]) -> float:
    from math import exp

    z = weights[-1] + sum(w * x for w, x in zip(weights, features))
    return 1.0 / (1.0 + exp(-z)) if z > -700 else 0.0


def _weights(grams: list[str], vocab: Mapping[str, int], idf: Any) -> dict[int, float]:
    """TF-IDF as scikit-learn computes it (sublinear tf, then l2 norm), for the n-grams the model knows."""
    from math import log, sqrt

    counts: dict[int, int] = {}
    for gram in grams:
        index = vocab.get(gram)
        if index is not None:
            counts[index] = counts.get(index, 0) + 1
    weights = {i: (1.0 + log(n)) * float(idf[i]) for i, n in counts.items()}
    norm = sqrt(sum(w * w for w in weights.values()))
    return {i: w / norm for i, w in weights.items()} if norm else {}


def _two_labels(coef: Any) -> Any:
    """A two-label LinearSVC gives one row of scores (for the second label): as two rows, -s and s."""
    import numpy as np

    return np.vstack([-coef, coef])


_WHITE_SPACES = re.compile(r"\s\s+")


def _char_ngrams(text: str) -> list[str]:
    """Character n-grams as scikit-learn's char analyzer makes them (runs of spaces as one)."""
    text = _WHITE_SPACES.sub(" ", text)
    low, high = CHAR_NGRAMS
    return [text[i:i + n] for n in range(low, min(high, len(text)) + 1) for i in range(len(text) - n + 1)]


def _cross_validated(features: Any, labels: list[str], classes: Any) -> Any:
    """The linear model's scores of every example by a model trained without it (cross-validation);
    None with too few examples per label."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.svm import LinearSVC

    folds = min(CALIBRATION_FOLDS, min(labels.count(c) for c in classes))
    if folds < 2:
        return None
    return cross_val_predict(LinearSVC(C=SVM_C, random_state=0), features, labels, method="decision_function",
                             cv=StratifiedKFold(folds, shuffle=True, random_state=0))


def _fit_certainty(texts: list[str], labels: list[str], classes: Any, scores: Any,
                   temperature: float) -> tuple[float, ...] | None:
    """Fits the certainty's weights (see CERTAINTY) on the held-out predictions: each example's
    confidence and length, and whether its label was right. None with too few right or wrong ones."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    probabilities = _softmax(scores, temperature)
    right = probabilities.argmax(axis=1) == np.searchsorted(classes, labels)
    if min(right.sum(), (~right).sum()) < CERTAINTY_OUTCOMES:
        return None
    rows = [_certainty_features(float(p), text) for p, text in zip(probabilities.max(axis=1), texts)]
    fit = LogisticRegression(C=1.0, max_iter=1000).fit(np.array(rows), right)
    return (*map(float, fit.coef_[0]), float(fit.intercept_[0]))


def _fit_temperature(scores: Any, labels: list[str], classes: Any) -> float:
    """Picks the softmax temperature that best predicts held-out examples (least log loss), from
    their cross-validated scores."""
    import numpy as np

    truth = np.searchsorted(classes, labels)
    rows = np.arange(len(labels))

    def log_loss(temperature: float) -> float:
        return -float(np.log(_softmax(scores, temperature)[rows, truth] + 1e-12).mean())

    return min(TEMPERATURES, key=log_loss)


def _softmax(scores: Any, temperature: float) -> Any:
    import numpy as np

    scaled = np.asarray(scores, dtype=float) * temperature
    if scaled.ndim == 1:  # two labels: one score per message, for the second label
        scaled = np.column_stack([-scaled, scaled])
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def _pinyin_ngrams(text: str, tokens: list[str] | None = None) -> list[str]:
    """The pinyin n-grams of a normalised text (tokens: its pinyin_tokens, when already made)."""
    tokens = pinyin_tokens(text) if tokens is None else tokens
    low, high = PINYIN_NGRAMS
    return [" ".join(tokens[i:i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]


def _stack(chars: Any, pinyin: Any) -> Any:
    from scipy.sparse import hstack

    return hstack([chars, pinyin * PINYIN_WEIGHT], format="csr")


# -- training examples from the content -----------------------------------------------------------

def load_examples(content_dir: Path = DEFAULT_DIR) -> dict[str, list[str]]:
    """Gathers the training messages by label from checked content (ContentError if it is invalid)."""
    content = load_content(content_dir)
    return content.examples()
