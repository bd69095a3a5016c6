"""The physicians' page in a real Chromium: pull → approve, a disagreement → arbitration, hostile text as text."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect
from queue_samples import make_samples
from queue_server import serving

from review_queue.store import QueueStore

XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def _login(browser: Browser, url: str, token: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(url)
    page.fill("#token", token)
    page.click("#login-btn")
    expect(page.locator("#app")).to_be_visible()
    return page


def test_review_to_approval_and_arbitration(browser: Browser, tmp_path: Path) -> None:
    store = QueueStore.open(f"sqlite:///{tmp_path / 'q.db'}", lease_seconds=600)
    parent, plain = make_samples(2)
    child = make_samples(1, start=7)[0]
    child = child.model_copy(
        update={
            "id": "b-child",
            "instruction": XSS + child.instruction,
            "provenance": child.provenance.model_copy(update={"parent_id": parent.id}),
        }
    )
    plain = plain.model_copy(
        update={"id": "a-plain", "output": "'); DROP TABLE queue_items; --" + plain.output}
    )
    store.push(
        [parent], run_id="other", priority=-1
    )  # queued earlier; found in the store when the child comes
    store.push([plain, child], run_id="web")
    tok = {n: store.add_user(n, r) for n, r in (("ann", "reviewer"), ("bob", "reviewer"), ("cat", "arbiter"))}
    store.pull("zed", 1, area="nowhere")  # no-op pull: filters that match nothing lease nothing

    with serving(store) as url:
        ann = _login(browser, url, tok["ann"])
        ann.fill("#size", "2")
        ann.click("#pull")
        expect(ann.locator("#batch li")).to_have_count(2)
        expect(ann.locator("#item-id")).to_have_text("a-plain")
        expect(ann.locator("#f-output")).to_have_value(plain.output)  # SQL text shown verbatim
        expect(ann.locator("#countdown")).to_have_text(re.compile(r"^(9|10):\d\d$"))
        ann.locator("body").press("a")  # keyboard approve; the page moves on to the next item
        expect(ann.locator("#item-id")).to_have_text("b-child")
        expect(ann.locator("#f-instruction")).to_have_value(child.instruction)
        expect(ann.locator("#p-instruction")).to_have_text(parent.instruction)  # parent beside the candidate
        ann.fill("#f-output", child.output + "如有胸痛加重请立即就医。")
        ann.fill("#icd-search", "I20")
        ann.click("#icd-results li[data-code='I20.0']")
        expect(ann.locator("#icd-chips")).to_contain_text("I20.0")
        ann.fill("#f-comment", XSS)
        ann.locator("#f-output").press("Control+Enter")
        expect(ann.locator("#msg")).to_contain_text("修改")

        bob = _login(browser, url, tok["bob"])
        bob.fill("#size", "2")
        bob.click("#pull")
        expect(bob.locator("#batch li")).to_have_count(2)
        expect(bob.locator("#reviews")).to_be_hidden()  # blind: no trace of ann's decision
        assert "如有胸痛" not in bob.content()
        bob.click("#approve")
        expect(bob.locator("#msg")).to_contain_text("final")
        bob.select_option("#reject-reason", "factually_wrong")
        bob.fill("#reject-text", "与指南不符")
        bob.locator("#reject-text").press("Escape")  # leave the field, then the shortcut
        bob.keyboard.press("r")
        expect(bob.locator("#msg")).to_contain_text("arbitration")

        cat = _login(browser, url, tok["cat"])
        cat.click("#pull-arb")
        expect(cat.locator("#item-kind")).to_have_text("仲裁")
        expect(cat.locator("#reviews")).to_be_visible()
        both = cat.locator("#reviews .review")
        expect(both.nth(0)).to_contain_text("ann：修改")
        expect(both.nth(0)).to_contain_text(XSS)  # the hostile comment appears as text
        expect(both.nth(1)).to_contain_text("bob：驳回")
        expect(both.nth(1)).to_contain_text("与指南不符")
        cat.click("#correct")  # the arbiter adopts a correction of their own
        expect(cat.locator("#msg")).to_contain_text("must change something")  # nothing changed yet: refused
        cat.fill("#f-output", child.output + "（仲裁修订）")
        cat.click("#correct")
        expect(cat.locator("#msg")).to_contain_text("final")
        for page in (ann, bob, cat):
            assert page.evaluate("window.__pwned") is None

    final = {f.item_id: f for f in store.finalized()}
    assert final["a-plain"].outcome == "approved"
    arb = final["b-child"]
    assert arb.arbitration.reviewer == "cat" and arb.sample.output.endswith("（仲裁修订）")
    assert {r.reviewer: r.payload.get("icd10") for r in arb.reviews}["ann"] == ["I20.0"]
    store.close()
