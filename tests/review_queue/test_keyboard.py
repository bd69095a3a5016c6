"""Keyboard first, in the real Chromium: log in, pull, approve, reject with a reason, correct, next and
previous without the mouse, counting the keystrokes each decision takes; the change marking of a real
negative (verdict, error type, span, why) and a real paraphrase (word diff, mappings) is on the page."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from derived_samples import cousin, derived, release
from playwright.sync_api import Browser, Page, expect
from queue_server import serving

from review_queue.db import reviews
from review_queue.store import QueueStore


class Keys:
    """Every key the reviewer presses goes through here and is counted (a chord such as Ctrl+Enter is one)."""

    def __init__(self, page: Page):
        self.page = page
        self.count = 0

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.count += 1

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)
        self.count += len(text)

    def since(self, start: int) -> int:
        return self.count - start


def _decisions(store: QueueStore) -> dict[str, tuple[str, dict]]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(reviews.c.item_id, reviews.c.decision, reviews.c.payload)
                            .where(reviews.c.reviewer == "ann")).all()  # fmt: skip
    return {r.item_id: (r.decision, json.loads(r.payload)) for r in rows}


def test_keyboard_only_review_counts_keystrokes(browser: Browser, tmp_path: Path) -> None:
    seed, neg, para = derived()
    store = QueueStore.open(f"sqlite:///{tmp_path / 'q.db'}", lease_seconds=600)
    release(store, [cousin()], tmp_path / "datasets")
    store.push([seed], run_id="seeds", priority=-1)  # the parent is queued (pulled after its children)
    store.push([neg], run_id="aug", priority=1)
    store.push([para], run_id="aug")
    token = store.add_user("ann", "reviewer")
    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    keys = Keys(page)
    with serving(store, releases=tmp_path / "datasets") as url:
        page.goto(url)
        expect(page.locator("#token")).to_be_focused()  # focus lands where typing starts
        keys.type(token)
        keys.press("Enter")
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator("#pull")).to_be_focused()  # nothing leased yet: P (or Enter) pulls
        keys.press("p")
        expect(page.locator("#batch li")).to_have_count(3)
        item = page.locator("#item-id")
        ids = [neg.id, para.id, seed.id]
        expect(item).to_have_text(neg.id)  # by priority: negative, paraphrase, their parent

        # The negative: what changed, why it is wrong and 此回答不正确, without hunting by eye.
        change = page.locator("#change")
        expect(change).to_contain_text("此回答不正确")
        expect(change).to_contain_text("错误类型：诊断错误")
        expect(change.locator("del")).to_have_text("川崎病")
        expect(change.locator("ins")).to_have_text("猩红热")
        expect(change).to_contain_text("为何错误：")
        expect(change).to_contain_text("不支持猩红热")
        expect(change).to_contain_text("本例表现支持川崎病")
        expect(page.locator("#d-output ins")).to_have_text("猩红热")  # word diff, candidate side
        expect(page.locator("#p-output del")).to_have_text("川崎病")  # parent side
        expect(page.locator("#dr-instruction")).to_be_hidden()  # an unchanged field shows no diff row
        expect(page.locator("#checks li[data-check='facts']")).to_contain_text("✓ 事实核对：恰好一处事实改变")
        expect(page.locator("#facts .fact.changed").first).to_be_visible()
        expect(page.locator("#released li")).to_contain_text("peds v1")  # the released near copy
        expect(page.locator("#neighbours li").first).to_contain_text("%")

        # Next and previous: one key each, nothing decided.
        keys.press("j")
        expect(item).to_have_text(para.id)
        # The paraphrase: its word diff and each mapping with its relation.
        expect(page.locator("#d-instruction ins")).to_have_text(["发热", "结膜充血"])
        expect(page.locator("#p-instruction del")).to_have_text(["发烧", "眼睛发红"])
        expect(page.locator("#change li")).to_have_text(
            ["指令：发烧 → 发热等义", "指令：眼睛发红 → 结膜充血等义"]
        )
        expect(page.locator("#checks li[data-check='facts']")).to_contain_text("与父样本的临床事实一致")
        keys.press("k")
        expect(item).to_have_text(neg.id)

        start = keys.count  # approve: one key; the page moves on to the next undecided item
        keys.press("a")
        approve_keys = keys.since(start)
        expect(item).to_have_text(para.id)

        start = keys.count  # correct: C selects the changed words, type the fix, Ctrl+Enter
        keys.press("c")
        box = page.locator("#f-instruction")
        expect(box).to_be_focused()
        assert page.evaluate("(() => { const b = document.activeElement;"
                             " return b.value.slice(b.selectionStart, b.selectionEnd); })()") == "发热"  # fmt: skip
        keys.type("发烧")
        keys.press("Control+Enter")
        correct_keys = keys.since(start)
        expect(item).to_have_text(seed.id)

        start = keys.count  # reject with a reason: one digit (6 = duplicate)
        keys.press("6")
        reject_keys = keys.since(start)
        expect(page.locator("#item")).to_be_hidden()  # the batch is done
        expect(page.locator("#pull")).to_be_focused()  # the next key can pull the next batch
        expect(page.locator("#batch li.done")).to_have_count(3)

    decided = _decisions(store)
    assert set(decided) == set(ids)
    assert decided[neg.id][0] == "approve"
    assert decided[para.id][0] == "correct" and decided[para.id][1][
        "instruction"
    ] == para.instruction.replace("发热", "发烧")
    assert decided[seed.id][0] == "reject" and decided[seed.id][1]["reject_reason"] == "duplicate"
    assert (approve_keys, reject_keys) == (1, 1)
    assert correct_keys == 1 + len("发烧") + 1
    print(f"KEYSTROKES approve={approve_keys} reject={reject_keys} correct={correct_keys} "
          f"(c + {len('发烧')} typed + ctrl+enter) session_total={keys.count}")  # fmt: skip
    store.close()
