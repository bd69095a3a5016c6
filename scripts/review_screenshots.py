"""Screenshots of the review page for docs/review.md: a negative and a paraphrase under review.

    python scripts/review_screenshots.py [--out docs/img]

Serves a throw-away SQLite queue on 127.0.0.1 with the test seed, what the real augmenters derive from
it (tests/review_queue/derived_samples.py) and a released near copy, logs in as a reviewer in headless
Debian Chromium and saves review-negative.png and review-paraphrase.png. Chinese needs a CJK font
(Debian: fonts-noto-cjk).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "review_queue"))

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = ap.parse_args()
    from derived_samples import cousin, derived, release
    from playwright.sync_api import expect, sync_playwright
    from queue_server import serving

    from review_queue.store import QueueStore

    seed, neg, para = derived()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = QueueStore.open(f"sqlite:///{Path(tmp) / 'q.db'}", lease_seconds=1800)
        release(store, [cousin()], Path(tmp) / "datasets")
        store.push([seed], run_id="seeds", priority=-1)
        store.push([neg], run_id="aug", priority=1)
        store.push([para], run_id="aug")
        token = store.add_user("王医生", "reviewer")
        with serving(store, releases=Path(tmp) / "datasets") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
            page.goto(url)
            page.keyboard.type(token)
            page.keyboard.press("Enter")
            expect(page.locator("#pull")).to_be_focused()  # logged in, nothing leased yet
            page.keyboard.press("p")
            for name, sample, ready in (("review-negative.png", neg, "#change .verdict"),
                                        ("review-paraphrase.png", para, "#d-instruction ins")):  # fmt: skip
                expect(page.locator("#item-id")).to_have_text(sample.id)
                expect(page.locator(ready).first).to_be_visible()
                expect(page.locator("#released li").first).to_contain_text("v1")
                page.screenshot(path=str(args.out / name), full_page=True)
                print(args.out / name)
                page.keyboard.press("j")
            browser.close()
        store.close()


if __name__ == "__main__":
    main()
