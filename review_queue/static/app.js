// Physicians' page. All data is shown with textContent / .value, never as HTML.
"use strict";

const AREAS = { cardiovascular: "心血管", oncology: "肿瘤", endocrine: "内分泌", neurology: "神经", obgyn: "妇产", pediatrics: "儿科", general: "综合" };
const TASKS = { medical_qa: "医学问答", record_generation: "电子病历生成", diagnostic_reasoning: "疾病推理辅助", report_explanation: "医学报告解读", other: "其他" };
const LABELS = { positive: "正样本", negative: "负样本", refusal: "拒答" };
const ERRORS = { wrong_diagnosis: "诊断错误", wrong_drug: "用药错误", wrong_dose: "剂量错误", contradicts_findings: "与检查结果矛盾", missing_referral: "缺少转诊建议", overclaiming: "夸大疗效", other: "其他" };
const REASONS = { unsafe: "医疗安全风险", factually_wrong: "医学事实错误", personal_data: "含个人信息", off_task: "与任务不符", low_quality: "质量差/不通顺", duplicate: "重复", other: "其他" };
const DECISIONS = { approve: "通过", correct: "修改", reject: "驳回" };

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("medaug_token") || "", me: null, items: [], current: -1, chips: [], deadline: 0 };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fillSelect(sel, map) {
  for (const [k, v] of Object.entries(map)) { const o = el("option", v); o.value = k; sel.appendChild(o); }
}

function say(text, isError) {
  const m = $("msg");
  m.textContent = text;
  m.className = isError ? "error" : "";
}

async function api(method, path, body) {
  const r = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + state.token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const d = data.detail;
    throw new Error(typeof d === "string" ? d : JSON.stringify(d || r.status));
  }
  return data;
}

async function login() {
  state.token = $("token").value.trim() || state.token;
  try {
    state.me = await api("GET", "/api/me");
  } catch (e) { say("登录失败：" + e.message, true); return; }
  sessionStorage.setItem("medaug_token", state.token);
  $("login").hidden = true;
  $("app").hidden = false;
  $("me").textContent = state.me.name + "（" + state.me.role + "）";
  $("pull-arb").hidden = !state.me.permissions.includes("arbitrate");
  const mine = await api("GET", "/api/items");
  setItems(mine.items);
}

function setItems(items) {
  state.items = items.map((it) => Object.assign(it, { deadline: Date.now() + it.lease_seconds_left * 1000, done: false }));
  renderBatch();
  if (state.items.length) open(0); else { $("item").hidden = true; say("没有可领取的条目"); }
}

function renderBatch() {
  const ol = $("batch");
  ol.replaceChildren();
  state.items.forEach((it, i) => {
    const li = el("li", (it.status === "arbitration" ? "[仲裁] " : "") + it.sample.instruction);
    li.dataset.id = it.id;
    if (i === state.current) li.classList.add("current");
    if (it.done) li.classList.add("done");
    li.addEventListener("click", () => open(i));
    ol.appendChild(li);
  });
}

async function pull(arbitration) {
  try {
    let res;
    if (arbitration) res = await api("POST", "/api/arbitration/pull", { size: Number($("size").value) || 10 });
    else {
      const body = { size: Number($("size").value) || 10 };
      for (const [key, id] of [["area", "f-area"], ["task", "f-task"], ["label", "f-label-filter"]]) {
        if ($(id).value) body[key] = [$(id).value];
      }
      res = await api("POST", "/api/pull", body);
    }
    setItems(res.items);
    if (res.items.length) say("已领取 " + res.items.length + " 条");
  } catch (e) { say(e.message, true); }
}

function open(i) {
  state.current = i;
  const it = state.items[i];
  const s = it.sample;
  $("item").hidden = false;
  $("item-id").textContent = it.id;
  $("item-kind").textContent = it.status === "arbitration" ? "仲裁" : "审核";
  $("meta").textContent = [AREAS[s.area], TASKS[s.task], LABELS[s.label]].join(" · ");
  const p = it.parent || s;
  $("p-instruction").textContent = p.instruction;
  $("p-input").textContent = p.input;
  $("p-output").textContent = p.output;
  $("f-instruction").value = s.instruction;
  $("f-input").value = s.input;
  $("f-output").value = s.output;
  $("f-label").value = s.label;
  $("f-error-type").value = s.error_type || "";
  $("f-comment").value = "";
  $("reject-reason").value = "";
  $("reject-text").value = "";
  state.chips = [...(s.icd10 || [])];
  renderChips();
  renderReviews(it);
  renderBatch();
}

function renderReviews(it) {
  $("reviews").hidden = it.status !== "arbitration";
  [0, 1].forEach((k) => {
    const box = $("review-" + k);
    box.replaceChildren();
    const r = it.reviews[k];
    if (!r) return;
    box.appendChild(el("h4", r.reviewer + "：" + (DECISIONS[r.decision] || r.decision)));
    box.dataset.decision = r.decision;
    for (const key of ["instruction", "input", "output", "label", "error_type", "icd10", "reject_reason", "reject_text", "comment"]) {
      if (r.payload[key] === undefined || r.payload[key] === "") continue;
      const v = Array.isArray(r.payload[key]) ? r.payload[key].join(", ") : r.payload[key];
      const row = el("div");
      row.appendChild(el("b", key + "："));
      row.appendChild(el("pre", v));
      box.appendChild(row);
    }
  });
}

function renderChips() {
  const box = $("icd-chips");
  box.replaceChildren();
  for (const code of state.chips) {
    const c = el("span", code + " ×", "chip");
    c.title = "移除";
    c.addEventListener("click", () => { state.chips = state.chips.filter((x) => x !== code); renderChips(); });
    box.appendChild(c);
  }
}

let icdTimer = 0;
function icdSearch() {
  clearTimeout(icdTimer);
  icdTimer = setTimeout(async () => {
    const q = $("icd-search").value;
    const ul = $("icd-results");
    ul.replaceChildren();
    if (!q.trim()) return;
    try {
      const res = await api("GET", "/api/icd10?q=" + encodeURIComponent(q));
      for (const r of res) {
        const li = el("li", r.code + " " + r.name);
        li.dataset.code = r.code;
        li.addEventListener("click", () => {
          if (!state.chips.includes(r.code)) state.chips.push(r.code);
          renderChips();
          ul.replaceChildren();
          $("icd-search").value = "";
        });
        ul.appendChild(li);
      }
    } catch (e) { say(e.message, true); }
  }, 150);
}

function sameList(a, b) { return a.length === b.length && a.every((x, i) => x === b[i]); }

function decisionBody(kind) {
  const it = state.items[state.current];
  const s = it.sample;
  const body = { decision: kind, comment: $("f-comment").value };
  if (kind === "correct") {
    for (const f of ["instruction", "input", "output"]) {
      const v = $("f-" + f).value;
      if (v !== s[f]) body[f] = v;
    }
    const label = $("f-label").value;
    const et = $("f-error-type").value;
    if (label !== s.label) body.label = label;
    if (label === "negative" && et && et !== s.error_type) body.error_type = et;
    if (!sameList(state.chips, s.icd10 || [])) body.icd10 = state.chips;
  }
  if (kind === "reject") {
    body.reject_reason = $("reject-reason").value || null;
    body.reject_text = $("reject-text").value;
  }
  return body;
}

async function decide(kind) {
  const it = state.items[state.current];
  if (!it || it.done) return;
  if (kind === "reject" && !$("reject-reason").value) { say("请选择驳回原因", true); $("reject-reason").focus(); return; }
  const path = "/api/items/" + encodeURIComponent(it.id) + (it.status === "arbitration" ? "/arbitrate" : "/submit");
  try {
    const res = await api("POST", path, decisionBody(kind));
    it.done = true;
    say("已提交：" + DECISIONS[kind] + "（状态 " + res.status + "）");
    const next = state.items.findIndex((x) => !x.done);
    if (next >= 0) open(next); else { renderBatch(); $("item").hidden = true; }
  } catch (e) { say(e.message, true); }
}

async function extend() {
  const it = state.items[state.current];
  if (!it) return;
  try {
    const res = await api("POST", "/api/items/" + encodeURIComponent(it.id) + "/extend", {});
    it.deadline = Date.now() + res.lease_seconds_left * 1000;
    say("租约已延长");
  } catch (e) { say(e.message, true); }
}

async function release() {
  const it = state.items[state.current];
  if (!it) return;
  try {
    await api("POST", "/api/items/" + encodeURIComponent(it.id) + "/release");
    state.items.splice(state.current, 1);
    say("已退回");
    if (state.items.length) open(Math.min(state.current, state.items.length - 1)); else { renderBatch(); $("item").hidden = true; }
  } catch (e) { say(e.message, true); }
}

function tick() {
  const it = state.items[state.current];
  if (!it) return;
  const left = Math.max(0, Math.round((it.deadline - Date.now()) / 1000));
  $("countdown").textContent = left > 0 ? Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") : "已过期";
}

function onKey(ev) {
  if (!state.me || $("item").hidden) return;
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); decide("correct"); return; }
  const tag = (ev.target.tagName || "").toLowerCase();
  const inField = ["input", "textarea", "select"].includes(tag);
  if (ev.key === "Escape" && inField) { ev.target.blur(); return; }  // leave the field; shortcuts work again
  if (inField || ev.ctrlKey || ev.altKey || ev.metaKey) return;
  const k = ev.key.toLowerCase();
  if (k === "a") decide("approve");
  else if (k === "c") decide("correct");
  else if (k === "r") decide("reject");
  else if (k === "e") extend();
  else if (k === "j" && state.current < state.items.length - 1) open(state.current + 1);
  else if (k === "k" && state.current > 0) open(state.current - 1);
  else return;
  ev.preventDefault();
}

fillSelect($("f-area"), AREAS);
fillSelect($("f-task"), TASKS);
fillSelect($("f-label-filter"), LABELS);
fillSelect($("f-label"), LABELS);
fillSelect($("f-error-type"), ERRORS);
fillSelect($("reject-reason"), REASONS);
$("login-btn").addEventListener("click", login);
$("token").addEventListener("keydown", (e) => { if (e.key === "Enter") login(); });
$("pull").addEventListener("click", () => pull(false));
$("pull-arb").addEventListener("click", () => pull(true));
$("approve").addEventListener("click", () => decide("approve"));
$("correct").addEventListener("click", () => decide("correct"));
$("reject").addEventListener("click", () => decide("reject"));
$("extend").addEventListener("click", extend);
$("release").addEventListener("click", release);
$("icd-search").addEventListener("input", icdSearch);
document.addEventListener("keydown", onKey);
setInterval(tick, 500);
if (state.token) login();
