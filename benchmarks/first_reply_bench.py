"""Times the first free-text reply of a fresh kefu process, with and without the router's cache, and
what classifying one message costs. Prints figures; asserts nothing.

Run from the repository root: .venv/bin/python benchmarks/first_reply_bench.py"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RUNS = 5
MESSAGE = "我的货在厦门压了四天还没发，你们到底管不管"

# Run in a fresh interpreter: seconds from its start to the reply, and the parts of it.
FIRST_REPLY = f"""
import time, os, sys
start = time.perf_counter()
from bot.config import Settings
from bot.service import Service
from dialogs.conversation import Inbound
imported = time.perf_counter()
service = Service.from_settings(Settings())
loaded = time.perf_counter()
service.receive("console", "bench", Inbound(text={MESSAGE!r}))
done = time.perf_counter()
print(done - start, imported - start, loaded - imported, done - loaded)
"""


def first_reply(cache: Path, database: Path) -> list[float]:
    env = {"XDG_CACHE_HOME": str(cache), "KEFU_DATABASE_URL": f"sqlite:///{database}", "PATH": "/usr/bin:/bin"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", FIRST_REPLY], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return [time.perf_counter() - started] + [float(x) for x in out]


def main() -> None:
    rows = {"cold (no cached router: trains first)": [], "warm (router cached for this content)": []}
    for run in range(RUNS):
        with tempfile.TemporaryDirectory() as folder:
            cache = Path(folder) / "cache"
            rows["cold (no cached router: trains first)"].append(first_reply(cache, Path(folder) / "a.db"))
            rows["warm (router cached for this content)"].append(first_reply(cache, Path(folder) / "b.db"))
    print(f"first free-text reply of a fresh process, median of {RUNS} (seconds):")
    print(f"  {'':40} {'process':>8} {'in-proc':>8} {'imports':>8} {'content':>8} {'reply':>8}")
    for name, runs in rows.items():
        medians = [statistics.median(column) for column in zip(*runs)]
        print(f"  {name:40} " + " ".join(f"{m:8.2f}" for m in medians))

    from dialogs.content import load_content
    from dialogs.intents import Router

    router = Router.train(load_content().examples())
    texts = [MESSAGE, "代收5000手续费多少", "你们司机骂我", "货到哪了，三天没更新"] * 250
    started = time.perf_counter()
    router.classify_many(texts)
    print(f"classify: {(time.perf_counter() - started) / len(texts) * 1000:.3f} ms per message ({len(texts)} messages)")


if __name__ == "__main__":
    main()
