// Physicians' page. All data is shown with textContent / .value, never as HTML.
"use strict";

const AREAS = { cardiovascular: "心血管", oncology: "肿瘤", endocrine: "内分泌", neurology: "神经", obgyn: "妇产", pediatrics: "儿科", general: "综合" };
const TASKS = { medical_qa: "医学问答", record_generation: "电子病历生成", diagnostic_reasoning: "疾病推理辅助", report_explanation: "医学报告解读", other: "其他" };
const LABELS = { positive: "正样本", negative: "负样本", refusal: "拒答" };
const ERRORS = { wrong_diagnosis: "诊断错误", wrong_drug: "用药错误", wrong_dose: "剂量错误", contradicts_findings: "与检查结果矛盾", missing_referral: "缺少转诊建议", overclaiming: "夸大疗效", other: "其他" };
const REASONS = { unsafe: "医疗安全风险", factually_wrong: "医学事实错误", personal_data: "含个人信息", off_task: "与任务不符", low_quality: "质量差/不通顺", duplicate: "重复", other: "其他" };
const DECISIONS = { approve: "通过", correct: "修改", reject: "驳回" };
const REASON_KEYS = Object.keys(REASONS);  // key 1..7 rejects with that reason
const RELATIONS = { exact: "等义", narrower: "更窄", broader: "更宽", related: "相关" };
const CHECKS = { facts: "事实核对", specificity: "特异性", quality: "质量门", deid: "去标识", test_model: "测试模型" };
const FIELD_NAMES = { instruction: "指令", input: "输入", output: "输出" };
const FACT_KINDS = { symptom: "症状", finding: "体征/检查", disease: "疾病", procedure: "操作", history: "病史", drug: "药物", number: "数值", duration: "时长", frequency: "频次" };

// A model id containing this is a medaug test model (medaug/test_model.py TEST_MODEL_MARK).
const TEST_MODEL_MARK = "medaug-test";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("medaug_token") || "", me: null, items: [], current: -1, chips: [], deadline: 0 };

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fillSelect(sel, map, numbered) {
  Object.entries(map).forEach(([k, v], i) => { const o = el("option", numbered ? (i + 1) + " " + v : v); o.value = k; sel.appendChild(o); });
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
  if (state.me.permissions.includes("stats")) { $("maint").hidden = false; loadStrata(); }
  if (!state.me.permissions.includes("review")) { $("app").hidden = true; return; }
  const mine = await api("GET", "/api/items");
  setItems(mine.items);
  if (!state.items.length) $("pull").focus();
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

// Text written by the tiny test/demo model is layout practice, not medicine: say so above the item.
function fromTestModel(sample) {
  const model = (sample && sample.provenance && sample.provenance.model) || "";
  return model.includes(TEST_MODEL_MARK);
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
  $("test-model-banner").hidden = !(it.test_model || fromTestModel(s) || fromTestModel(it.parent));
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
  renderEvidence(it);
  $("item").focus();  // keys act at once; C puts the caret in the changed words
  loadEvidence(it);
  if (state.items[i + 1]) loadEvidence(state.items[i + 1]);
}

async function loadEvidence(it) {
  if (it.evidence || it.evidenceLoading || it.evidenceFailed) return;  // evidence is optional
  it.evidenceLoading = true;
  try {
    it.evidence = await api("GET", "/api/items/" + encodeURIComponent(it.id) + "/evidence");
    if (state.items[state.current] === it) renderEvidence(it);
  } catch (e) { it.evidence = null; it.evidenceFailed = true; } finally { it.evidenceLoading = false; }
}

// Runs of a word diff as DOM: "=" plain, "-" struck out (parent side), "+" marked (candidate side).
function diffNodes(runs, side) {
  const out = [];
  for (const [op, text] of runs) {
    if (op === "=") out.push(document.createTextNode(text));
    else if (op === side) out.push(el(side === "-" ? "del" : "ins", text));
  }
  return out;
}

function renderEvidence(it) {
  const ev = it.evidence;
  const s = it.sample;
  $("parent-source").textContent = !ev ? "" : ev.parent_source === "queue" ? "（队列中的父样本）" : ev.parent_source === "provenance" ? "（由来源记录还原）" : "";
  for (const f of ["instruction", "input", "output"]) {
    const runs = ev && ev.diff ? ev.diff[f] : null;
    const changed = runs && runs.some(([op]) => op !== "=");
    $("dr-" + f).hidden = !changed;
    $("d-" + f).replaceChildren(...(changed ? diffNodes(runs, "+") : []));
    if (ev && ev.parent) $("p-" + f).replaceChildren(...(changed ? diffNodes(runs, "-") : [document.createTextNode(ev.parent[f])]));
  }
  renderChange(ev ? ev.change : null);
  renderFacts(ev);
  const checks = $("checks");
  checks.replaceChildren();
  for (const c of (ev ? ev.checks : [])) {
    const li = el("li", (c.status === "pass" ? "✓ " : "⚠ ") + (CHECKS[c.name] || c.name) + "：" + c.detail, c.status);
    li.dataset.check = c.name;
    checks.appendChild(li);
  }
  const nb = $("neighbours");
  nb.replaceChildren();
  for (const n of (ev ? ev.neighbours : [])) {
    const li = el("li");
    li.appendChild(el("b", Math.round(n.similarity * 100) + "%"));
    li.appendChild(document.createTextNode(" [" + (LABELS[n.label] || n.label) + " · " + n.status + "] " + n.instruction));
    nb.appendChild(li);
  }
  if (ev && !ev.neighbours.length) nb.appendChild(el("li", "（无）"));
  const rel = $("released");
  rel.replaceChildren();
  for (const n of (ev ? ev.released || [] : [])) {
    const li = el("li");
    li.appendChild(el("b", Math.round(n.similarity * 100) + "%"));
    li.appendChild(document.createTextNode(" [" + n.dataset + " v" + n.version + " · " + (LABELS[n.label] || n.label) + "] " + n.instruction));
    rel.appendChild(li);
  }
  if (ev && !(ev.released || []).length) rel.appendChild(el("li", "（无）"));
  if (ev && ev.test_model) $("test-model-banner").hidden = false;
}

function renderChange(ch) {
  const box = $("change");
  box.replaceChildren();
  box.hidden = !ch;
  if (!ch) return;
  box.className = "change " + ch.kind;
  if (ch.kind === "negative") {
    box.appendChild(el("div", ch.verdict, "verdict"));
    const row = el("div");
    row.appendChild(el("b", "错误类型："));
    row.appendChild(document.createTextNode(ERRORS[ch.error_type] || ch.error_type || "?"));
    box.appendChild(row);
    const span = el("div");
    span.appendChild(el("b", "改动："));
    span.appendChild(el("del", ch.before || "（无）"));
    span.appendChild(document.createTextNode(" → "));
    span.appendChild(el("ins", ch.after || "（删除）"));
    box.appendChild(span);
    const why = el("div");
    why.appendChild(el("b", "为何错误："));
    why.appendChild(document.createTextNode(ch.reason || "（增强器未记录）"));
    box.appendChild(why);
  } else if (ch.kind === "paraphrase") {
    box.appendChild(el("div", "改写（" + ch.augmenter + (ch.direction ? " · " + ch.direction : "") + "）", "verdict"));
    const ul = el("ul");
    for (const m of ch.mappings) {
      const li = el("li");
      li.appendChild(document.createTextNode((FIELD_NAMES[m.field] || m.field || "") + "："));
      li.appendChild(el("del", m.from));
      li.appendChild(document.createTextNode(" → "));
      li.appendChild(el("ins", m.to));
      li.appendChild(el("span", RELATIONS[m.relation] || m.relation, "rel " + m.relation));
      if (m.context) li.appendChild(document.createTextNode("（条件：" + m.context + "）"));
      ul.appendChild(li);
    }
    if (!ch.mappings.length) ul.appendChild(el("li", "（改写未记录映射）"));
    box.appendChild(ul);
  } else {
    box.appendChild(el("div", ch.augmenter, "verdict"));
    for (const [k, v] of Object.entries(ch.detail || {})) box.appendChild(el("div", k + "：" + v));
  }
}

const SIDES = { left: "左", right: "右", bilateral: "双侧" };

// A fact as the text said it (its surface), with negation and side where the surface lacks them.
function factText(f) {
  const said = f.surface || (f.term + (f.value && !f.term.includes(f.value) ? " " + f.value + (f.unit || "") : ""));
  const side = f.laterality && !/[左右双]/.test(said) ? (SIDES[f.laterality] || f.laterality) : "";
  const site = f.site && !said.includes(f.site) ? f.site : "";
  return (f.negated && !/^[无不没未否]/.test(said) ? "无" : "") + side + site + said;
}

function renderFacts(ev) {
  const table = $("facts");
  table.replaceChildren();
  if (!ev) return;
  const head = el("tr");
  for (const h of ["", "父样本", "候选"]) head.appendChild(el("th", h));
  table.appendChild(head);
  for (const [f, e] of Object.entries(ev.facts.fields)) {
    if (!e.candidate.length && !(e.parent || []).length) continue;
    const changedBefore = new Set((e.changes || []).filter((c) => c.before).map((c) => factText(c.before)));
    const changedAfter = new Set((e.changes || []).filter((c) => c.after).map((c) => factText(c.after)));
    const tr = el("tr");
    tr.appendChild(el("th", FIELD_NAMES[f] || f));
    for (const [list, changed] of [[e.parent, changedBefore], [e.candidate, changedAfter]]) {
      const td = el("td");
      if (!list) td.textContent = "—";
      for (const x of list || []) {
        const t = factText(x);
        const c = el("span", t, "fact" + (changed.has(t) ? " changed" : ""));
        c.title = (FACT_KINDS[x.kind] || x.kind) + " · " + x.term;  // the normalised term under the words
        td.appendChild(c);
      }
      tr.appendChild(td);
    }
    table.appendChild(tr);
  }
}

// Where a correction starts: the first changed words of the candidate (the output if nothing is marked).
function startCorrecting() {
  const it = state.items[state.current];
  const ev = it && it.evidence;
  for (const f of ["output", "instruction", "input"]) {
    const runs = ev && ev.diff ? ev.diff[f] : null;
    if (!runs || !runs.some(([op]) => op === "+")) continue;
    let pos = 0;
    for (const [op, text] of runs) {
      if (op === "+") { const box = $("f-" + f); box.focus(); box.setSelectionRange(pos, pos + text.length); return; }
      if (op === "=") pos += text.length;
    }
  }
  const box = $("f-output");
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
}

async function loadStrata() {
  try {
    const [st, stats] = await Promise.all([api("GET", "/api/strata"), api("GET", "/api/stats")]);
    renderStrata(st, stats);
  } catch (e) { say(e.message, true); }
}

function renderStrata(st, stats) {
  const pol = st.policy;
  $("strata-policy").textContent = pol ? "自动暂停：至少 " + pol.min_decisions + " 个决定后，通过率的 Wilson 上界低于 " + Math.round(pol.threshold * 100) + "%" : "自动暂停未启用";
  const table = $("strata");
  table.replaceChildren();
  const head = el("tr");
  for (const h of ["分层", "条目", "决定", "通过率", "Wilson 95%", "暂停", "每条通过样本的医生分钟", ""]) head.appendChild(el("th", h));
  table.appendChild(head);
  const canHold = state.me.permissions.includes("strata");
  for (const r of st.strata) {
    const tr = el("tr", undefined, r.held ? "held" : "");
    tr.dataset.stratum = r.stratum;
    const total = Object.values(r.items).reduce((a, b) => a + b, 0);
    const cells = [r.stratum, total, r.decisions, r.approval === null ? "-" : Math.round(r.approval * 100) + "%",
      r.wilson_low.toFixed(2) + "–" + r.wilson_high.toFixed(2), r.held ? "已暂停 " + r.held_items : String(r.held_items),
      r.minutes_per_approved === null ? "-" : r.minutes_per_approved.toFixed(2)];
    for (const c of cells) tr.appendChild(el("td", c));
    const td = el("td");
    if (canHold) {
      const b = el("button", r.held ? "恢复" : "暂停");
      b.addEventListener("click", () => holdOrRelease(r.stratum, r.held));
      td.appendChild(b);
    }
    tr.appendChild(td);
    table.appendChild(tr);
  }
  const tm = stats.time;
  $("time-total").textContent = "每条通过样本的医生用时：" + (tm.minutes_per_approved === null ? "-" : tm.minutes_per_approved.toFixed(2) + " 分钟") +
    "（共 " + tm.total_minutes.toFixed(1) + " 分钟，" + tm.approved_items + " 条通过；单个决定最多计 " + tm.idle_seconds + " 秒）";
  const tr = $("time-reviewers");
  tr.replaceChildren();
  const h = el("tr");
  for (const x of ["审核者", "决定", "平均秒/决定", "分钟"]) h.appendChild(el("th", x));
  tr.appendChild(h);
  for (const r of tm.reviewers) {
    const row = el("tr");
    for (const c of [r.reviewer, r.decisions, r.mean_seconds, r.minutes]) row.appendChild(el("td", c));
    tr.appendChild(row);
  }
}

async function holdOrRelease(stratum, held) {
  try {
    const res = await api("POST", held ? "/api/strata/release" : "/api/strata/hold", { stratum });
    say(held ? "已恢复 " + res.released_items + " 条" : "已暂停 " + res.held_items + " 条");
    loadStrata();
  } catch (e) { say(e.message, true); }
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
    if (next >= 0) open(next); else { renderBatch(); $("item").hidden = true; $("pull").focus(); }
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

function rejectWith(reason) {
  $("reject-reason").value = reason;
  if (reason === "other" && !$("reject-text").value) { $("reject-text").focus(); say("请写驳回说明，Enter 提交"); return; }
  decide("reject");
}

function onKey(ev) {
  if (!state.me) return;
  const tag = (ev.target.tagName || "").toLowerCase();
  const inField = ["input", "textarea", "select"].includes(tag);
  if (!inField && !ev.ctrlKey && !ev.altKey && !ev.metaKey && state.me.permissions.includes("stats") && ev.key.toLowerCase() === "s") { loadStrata(); return; }
  if (!inField && !ev.ctrlKey && !ev.altKey && !ev.metaKey && ev.key.toLowerCase() === "p" && !$("app").hidden) { ev.preventDefault(); pull(false); return; }
  if ($("item").hidden) return;
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); decide("correct"); return; }
  if (ev.key === "Enter" && ev.target.id === "reject-text" && $("reject-reason").value) { ev.preventDefault(); decide("reject"); return; }
  if (ev.key === "Escape" && inField) { ev.target.blur(); $("item").focus(); return; }  // leave the field; shortcuts work again
  if (inField || ev.ctrlKey || ev.altKey || ev.metaKey) return;
  const k = ev.key.toLowerCase();
  const n = Number(ev.key);
  if (k === "a") decide("approve");
  else if (n >= 1 && n <= REASON_KEYS.length) rejectWith(REASON_KEYS[n - 1]);
  else if (k === "c") startCorrecting();
  else if (k === "r") { if ($("reject-reason").value) decide("reject"); else { $("reject-reason").focus(); say("选择驳回原因（或直接按 1–7）"); } }
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
fillSelect($("reject-reason"), REASONS, true);
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
$("strata-refresh").addEventListener("click", loadStrata);
document.addEventListener("keydown", onKey);
setInterval(tick, 500);
if (state.token) login();
