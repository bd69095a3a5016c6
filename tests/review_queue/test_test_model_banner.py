"""The review page marks samples written by the tiny test model: their text is not medical."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect
from queue_samples import make_samples
from queue_server import serving

from medaug.test_model import TEST_MODEL_MARK
from review_queue.store import QueueStore


def test_banner_on_test_model_samples_only(browser: Browser, tmp_path: Path) -> None:
    store = QueueStore.open(f"sqlite:///{tmp_path / 'q.db'}", lease_seconds=600)
    tiny, real = make_samples(2)
    tiny = tiny.model_copy(
        update={
            "id": "a-tiny",
            "provenance": tiny.provenance.model_copy(
                update={"model": f"/srv/var/models/{TEST_MODEL_MARK}/tiny-qwen2"}
            ),
        }
    )
    real = real.model_copy(
        update={
            "id": "b-real",
            "provenance": real.provenance.model_copy(update={"model": "Qwen/Qwen2.5-7B-Instruct"}),
        }
    )
    store.push([tiny, real], run_id="web")
    token = store.add_user("ann", "reviewer")
    with serving(store) as url:
        page = browser.new_context().new_page()
        page.goto(url)
        page.fill("#token", token)
        page.click("#login-btn")
        page.fill("#size", "2")
        page.click("#pull")
        expect(page.locator("#batch li")).to_have_count(2)
        banner = page.locator("#test-model-banner")
        seen = []
        for k in range(2):  # the pull order is the queue's business; each item is checked as it comes
            item = page.locator("#item-id")
            expect(item).not_to_have_text(seen[0] if seen else "")
            seen.append(item.text_content())
            if seen[-1] == "a-tiny":
                expect(banner).to_be_visible()
                expect(banner).to_contain_text("test model output — text is not medical")
            else:  # a real model's sample carries no banner
                expect(banner).to_be_hidden()
            if k == 0:
                page.locator("body").press("j")
        assert sorted(seen) == ["a-tiny", "b-real"]
    store.close()
