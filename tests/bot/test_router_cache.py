"""The trained router is kept per version of the content, so a new process answers free text at once."""

from __future__ import annotations

from bot.service import BackgroundRouter
from dialogs.intents import Router


def test_a_second_start_reads_the_router_from_the_cache_instead_of_training(content, tmp_path, monkeypatch):
    first = BackgroundRouter(content, tmp_path)
    expected = first.classify("我的货在厦门压了四天还没发")  # trains, then keeps the model
    assert list(tmp_path.glob("router-*.npz"))

    def no_training(_examples):
        raise AssertionError("trained again although the cache holds this content's model")

    monkeypatch.setattr(Router, "train", staticmethod(no_training))
    second = BackgroundRouter(content, tmp_path)
    assert second.classify("我的货在厦门压了四天还没发") == expected


def test_a_broken_cache_file_is_trained_over(content, tmp_path):
    BackgroundRouter(content, tmp_path).classify("代收5000手续费多少")
    [cached] = tmp_path.glob("router-*.npz")
    cached.write_bytes(b"not a model")
    again = BackgroundRouter(content, tmp_path)
    assert again.classify("代收5000手续费多少").label == "cod"
    assert cached.read_bytes() != b"not a model"  # written anew
