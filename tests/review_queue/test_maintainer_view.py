"""The maintainer view in the real Chromium: strata with counts, approval, Wilson bounds and held items,
physician minutes per approved sample, and a held stratum released from the page (audited)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect
from queue_samples import make_samples
from queue_server import serving

from medaug.schema import AugmentationStep
from review_queue.decisions import Decision
from review_queue.store import QueueStore
from review_queue.strata import HoldPolicy, stratum_of


def test_maintainer_sees_strata_and_releases_a_held_one(browser: Browser, tmp_path: Path) -> None:
    store = QueueStore.open(f"sqlite:///{tmp_path / 'q.db'}", hold=HoldPolicy(threshold=0.6, min_decisions=5))
    t = [1000.0]
    store.clock = lambda: t[0]
    junk = [
        s.model_copy(update={"provenance": s.provenance.model_copy(
            update={"augmentation": [AugmentationStep(augmenter="junk_aug")]})})
        for s in make_samples(12, prefix="坏", start=100) if s.label.value == "positive"
    ]  # fmt: skip
    store.push(junk, run_id="r")
    key = stratum_of(junk[0]).key
    for item in store.pull("ann", 5):
        t[0] += 20
        store.submit("ann", item.id, Decision(decision="reject", reject_reason="low_quality"))
    held = next(r for r in store.strata_report() if r["stratum"] == key)
    assert held["held"] and held["held_items"] == len(junk)  # unreviewed and awaiting a second review
    token = store.add_user("mia", "maintainer")
    with serving(store) as url:
        page = browser.new_context().new_page()
        page.goto(url)
        page.fill("#token", token)  # typing before autofocus lands would drop the first keys
        page.press("#token", "Enter")
        expect(page.locator("#maint")).to_be_visible()
        expect(page.locator("#app")).to_be_hidden()  # a maintainer does not review
        expect(page.locator("#strata-policy")).to_contain_text("至少 5 个决定后")
        row = page.locator(f"#strata tr[data-stratum='{key}']")
        cells = row.locator("td")
        expect(cells.nth(1)).to_have_text(str(len(junk)))  # items
        expect(cells.nth(2)).to_have_text("5")  # decisions
        expect(cells.nth(3)).to_have_text("0%")  # approval
        expect(cells.nth(5)).to_have_text(f"已暂停 {len(junk)}")
        expect(cells.nth(6)).to_have_text("-")  # no approved sample yet: no minutes per approved
        expect(page.locator("#time-total")).to_contain_text("每条通过样本的医生用时：-")
        expect(page.locator("#time-reviewers")).to_contain_text("ann")
        row.locator("button").click()  # 恢复
        expect(page.locator("#msg")).to_contain_text(f"已恢复 {len(junk)} 条")
        expect(cells.nth(5)).to_have_text("0")
    after = next(r for r in store.strata_report() if r["stratum"] == key)
    assert not after["held"] and after["items"].get("open") == len(junk)
    store.close()
