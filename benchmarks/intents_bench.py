"""Times the understanding layer: imports (each in a fresh interpreter), training the router at
start-up (on the shipped examples, and on about 1000), classifying and extracting per message.

Run from the repository root: .venv/bin/python benchmarks/intents_bench.py"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IMPORTS = {
    "dialogs.intents (no scikit-learn yet)": "import dialogs.intents",
    "scikit-learn (TfidfVectorizer, LinearSVC)": "import sklearn.feature_extraction.text, sklearn.svm",
    "dialogs.entities (cn2an, opencc)": "import dialogs.entities",
    "cn2an": "import cn2an",
    "opencc (opencc-python-reimplemented)": "import opencc; opencc.OpenCC('t2s')",
    "pinyin table (pypinyin's JSON)": "import dialogs.intents as i; i._syllable('运')",
}
RUNS = 5


def time_import(statement: str) -> float:
    """Returns the median seconds a statement takes in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                  check=True).stdout) for _ in range(RUNS)]
    return statistics.median(times)


def about_1000(examples: dict[str, list[str]]) -> dict[str, list[str]]:
    """Returns the examples grown to about 1000 distinct messages, by adding polite variants."""
    endings = ["，麻烦了", "，谢谢", "，急", "？", "！！"]
    grown = {label: list(items) for label, items in examples.items()}
    total, i = sum(map(len, grown.values())), 0
    while total < 1000:
        for label, items in examples.items():
            if total >= 1000:
                break
            grown[label].append(items[i % len(items)] + endings[i % len(endings)])
            total += 1
        i += 1
    return grown


def main() -> None:
    print("imports (median of 5 fresh interpreters):")
    for name, statement in IMPORTS.items():
        print(f"  {name:45s} {time_import(statement):6.3f} s")

    from dialogs.entities import extract
    from dialogs.evaluation import load_labelled
    from dialogs.content import load_content
    from dialogs.intents import Router, load_examples

    examples = load_examples()
    Router.train(examples)  # warm up: imports, the pinyin table
    for name, data in (("shipped", examples), ("about 1000", about_1000(examples))):
        n = sum(map(len, data.values()))
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            router = Router.train(data)
            times.append(time.perf_counter() - started)
        print(f"training on the {name} examples ({n}, {len(data)} labels): median {statistics.median(times):.3f} s,"
              f" max {max(times):.3f} s over {RUNS} runs")

    router = Router.train(examples)
    messages = [text for text, _ in load_labelled(ROOT / "tests" / "data" / "intents_eval.yaml")]
    started = time.perf_counter()
    for text in messages:
        router.classify(text)
    each = (time.perf_counter() - started) / len(messages)
    print(f"classify, one message at a time: {each * 1000:.2f} ms per message ({len(messages)} messages)")
    started = time.perf_counter()
    router.classify_many(messages)
    print(f"classify_many, all at once: {(time.perf_counter() - started) / len(messages) * 1000:.3f} ms per message")
    cities = load_content().shared.routing.places
    started = time.perf_counter()
    for text in messages:
        extract(text, cities)
    print(f"extract entities: {(time.perf_counter() - started) / len(messages) * 1000:.2f} ms per message")


if __name__ == "__main__":
    main()
