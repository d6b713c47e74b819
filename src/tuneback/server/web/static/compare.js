// tuneback compare page: one prompt, answers side by side, a vote that reveals the models.
import { api, csrfHeaders, readEvents } from "./http.js";
import { $, el } from "./dom.js";

const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const data = JSON.parse($("#compare-data").textContent);
const LABELS = ["A", "B", "C", "D"];

const setupForm = $("#setup");
const promptEl = $("#prompt");
const askBtn = $("#ask");
const stopBtn = $("#stop");
const battleEl = $("#battle");
const sidesGrid = $("#sides-grid");
const voteForm = $("#vote");
const followForm = $("#follow-up");

let round = null; // {round_id, mode, sides: [{label, run, message_id, html}], vote, revealed}
let runIds = [];
let streaming = false;

// ---------- setup ----------

function mode() {
  return $('input[name="mode"]:checked', setupForm).value;
}

function sideCount() {
  return Number($("#sides").value);
}

function updateSetup() {
  const m = mode();
  const n = sideCount();
  for (const pick of $$(".model-pick-side")) {
    const index = Number(pick.dataset.side);
    pick.hidden = m === "anonymous" || (m === "resample" ? index > 0 : index >= n);
  }
  $("#model-picks").hidden = m === "anonymous";
  askBtn.disabled = streaming || !promptEl.value.trim();
}

function chosenModels() {
  const m = mode();
  if (m === "anonymous") return [];
  const picks = $$(".model-pick-side select").map((select) => select.value);
  return m === "resample" ? [picks[0]] : picks.slice(0, sideCount());
}

// A named battle starts with two different models picked.
function spreadModels() {
  const selects = $$(".model-pick-side select");
  const specs = data.models.map((m) => m.spec);
  const first = selects[0].value;
  const others = specs.filter((s) => s !== first);
  selects.slice(1).forEach((select, i) => { if (others[i]) select.value = others[i]; });
}

// ---------- streaming (readEvents is in http.js) ----------

function sideTitle(side, revealed) {
  const model = side.run?.model || side.model;
  if (revealed && model) return `${side.label} · ${model}`;
  return `Model ${side.label}`;
}

function renderSide(side, revealed) {
  const card = el("article", { class: "side card", "data-side": side.label, "aria-label": `Answer ${side.label}` });
  card.append(el("header", { class: "side-head" }, [
    el("span", { class: "side-badge", text: side.label }),
    el("span", { class: "side-name", text: sideTitle(side, revealed) }),
  ]));
  const body = el("div", { class: "side-body md" });
  if (side.html !== undefined) body.innerHTML = side.html;
  card.append(body, el("footer", { class: "side-meta" }));
  if (side.run) finishSide(card, side);
  return card;
}

function finishSide(card, side) {
  const meta = $(".side-meta", card);
  meta.textContent = "";
  const run = side.run;
  const bits = [];
  if (run.latency_ms != null) bits.push(`${(run.latency_ms / 1000).toFixed(1)} s`);
  if (run.completion_tokens != null) bits.push(`${run.completion_tokens} tokens`);
  meta.append(el("span", { text: bits.join(" · ") }));
  card.classList.toggle("failed", run.status === "error");
  card.classList.toggle("cut", run.status === "cancelled");
  $(".side-body", card).classList.remove("streaming", "cursor");
  if (run.status === "error") {
    card.append(el("div", { class: "error-box", text: side.error || run.error || "This model failed to answer." }));
  } else if (run.status === "cancelled") {
    card.append(el("p", { class: "cancelled-note", text: "Stopped." }));
  }
}

function setStreaming(active) {
  streaming = active;
  stopBtn.hidden = !active;
  askBtn.hidden = active;
  promptEl.disabled = active;
  updateSetup();
}

async function runBattle(url, body, question) {
  $("#empty").hidden = true;
  battleEl.hidden = false;
  voteForm.hidden = true;
  followForm.hidden = true;
  $("#question").replaceChildren(el("div", { class: "bubble-user", text: question }));
  sidesGrid.replaceChildren();
  setStreaming(true);
  const bodies = [];
  const texts = [];
  try {
    const response = await fetch(url, {
      method: "POST", headers: csrfHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body),
    });
    if (!response.ok) {
      const failure = await response.json().catch(() => ({}));
      throw new Error(failure.error?.message || `request failed (${response.status})`);
    }
    for await (const { event, data: d } of readEvents(response)) {
      if (event === "start") {
        round = { round_id: d.round_id, mode: d.mode, sides: d.sides.map((s) => ({ ...s })), vote: null, revealed: d.mode !== "anonymous" };
        runIds = d.sides.map((s) => s.run_id);
        history.replaceState(null, "", `/compare?round=${d.round_id}`);
        sidesGrid.style.setProperty("--sides", d.sides.length);
        for (const side of d.sides) {
          const card = renderSide(side, round.revealed);
          const bodyEl = $(".side-body", card);
          bodyEl.classList.add("streaming");
          bodyEl.append(el("span", { class: "typing", "aria-label": "Thinking" }, [el("span"), el("span"), el("span")]));
          sidesGrid.append(card);
          bodies.push(bodyEl);
          texts.push("");
        }
      } else if (event === "delta") {
        if (!texts[d.side]) bodies[d.side].textContent = "";
        texts[d.side] += d.text;
        bodies[d.side].textContent = texts[d.side];
        bodies[d.side].classList.add("cursor");
      } else if (event === "side") {
        round.sides[d.side] = { ...round.sides[d.side], ...d };
        bodies[d.side].innerHTML = d.html;
        finishSide(sidesGrid.children[d.side], round.sides[d.side]);
      } else if (event === "done") {
        showVote();
      }
    }
  } catch (error) {
    sidesGrid.append(el("div", { class: "error-box", text: error.message }));
  } finally {
    setStreaming(false);
  }
}

// ---------- voting ----------

function showVote() {
  voteForm.hidden = false;
  const pair = round.sides.length === 2;
  $("#pair-vote").hidden = !pair;
  $("#rank-vote").hidden = pair;
  if (!pair) renderRanking(round.vote?.ranking || round.sides.map((s) => s.label));
  markVote();
}

function renderRanking(order) {
  const list = $("#rank-list");
  list.replaceChildren();
  order.forEach((label, i) => {
    const up = el("button", { type: "button", class: "small-btn", "aria-label": `Move ${label} up`, text: "↑", disabled: i === 0 });
    const down = el("button", { type: "button", class: "small-btn", "aria-label": `Move ${label} down`, text: "↓", disabled: i === order.length - 1 });
    up.addEventListener("click", () => renderRanking(moved(order, i, -1)));
    down.addEventListener("click", () => renderRanking(moved(order, i, 1)));
    list.append(el("li", { class: "rank-item", "data-label": label }, [
      el("span", { class: "side-badge", text: label }),
      el("span", { class: "rank-name", text: sideTitle(round.sides[LABELS.indexOf(label)], round.revealed) }),
      el("span", { class: "rank-moves" }, [up, down]),
    ]));
  });
}

function moved(order, index, step) {
  const next = [...order];
  [next[index], next[index + step]] = [next[index + step], next[index]];
  return next;
}

function markVote() {
  const vote = round.vote;
  for (const button of $$(".vote-btn")) button.setAttribute("aria-pressed", String(vote?.outcome === button.dataset.outcome));
  const status = $("#vote-status");
  status.classList.remove("bad");
  status.classList.toggle("ask", !vote);
  if (!vote) {
    status.textContent = round.sides.length === 2 ? "Which answer is better?" : "";
    return;
  }
  const said = vote.ranking ? `Your ranking: ${vote.ranking.join(" > ")}` : `Your vote: ${outcomeText(vote.outcome)}`;
  status.textContent = `${said}. Vote again to change it.`;
}

function outcomeText(outcome) {
  return { a: "A is better", b: "B is better", tie: "a tie", both_bad: "both are bad" }[outcome];
}

async function sendVote(body) {
  const status = $("#vote-status");
  status.textContent = "Saving…";
  try {
    const answer = await api("POST", `/ui/compare/${round.round_id}/vote`, {
      ...body, comment: $("#vote-comment").value.trim() || null, ideal: $("#vote-ideal").value.trim() || null,
    });
    applyRound(answer);
    if (answer.votes_left_today != null && $("#votes-left")) {
      $("#votes-left").textContent = `${answer.votes_left_today} of ${data.daily_cap} votes left today`;
    }
  } catch (error) {
    status.classList.add("bad");
    status.textContent = error.message;
  }
}

// The server's view of a round (after a vote, or on reload): names revealed once voted.
function applyRound(view) {
  round = view;
  sidesGrid.style.setProperty("--sides", view.sides.length);
  sidesGrid.replaceChildren(...view.sides.map((side) => renderSide(side, view.revealed)));
  $("#question").replaceChildren(el("div", { class: "bubble-user", text: view.question }));
  const history = $("#history");
  history.replaceChildren(...view.history.map((m) => el("div", { class: `history-turn ${m.role}`, text: m.content })));
  showVote();
  if (view.vote) {
    const winner = view.vote.ranking ? view.vote.ranking[0] : { a: "A", b: "B" }[view.vote.outcome];
    for (const card of sidesGrid.children) card.classList.toggle("chosen", card.dataset.side === winner);
    showFollowUp(winner);
  }
}

function showFollowUp(winner) {
  const answerable = round.sides.filter((s) => s.message_id);
  if (!answerable.length) return;
  const chosen = answerable.find((s) => s.label === winner) || answerable[0];
  followForm.hidden = false;
  followForm.dataset.answer = chosen.message_id;
  $("#follow-title").textContent = `Continue with ${sideTitle(chosen, round.revealed)}`;
}

// ---------- wiring ----------

setupForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const content = promptEl.value.trim();
  if (!content || streaming) return;
  const body = { content, mode: mode(), models: chosenModels(), sides: mode() === "anonymous" || mode() === "resample" ? sideCount() : chosenModels().length };
  runBattle("/ui/compare", body, content);
});
promptEl.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    setupForm.requestSubmit();
  }
});
promptEl.addEventListener("input", updateSetup);
$("#sides").addEventListener("change", updateSetup);
for (const radio of $$('input[name="mode"]')) radio.addEventListener("change", () => { if (mode() === "named") spreadModels(); updateSetup(); });
stopBtn.addEventListener("click", () => {
  for (const runId of runIds) api("POST", `/ui/runs/${runId}/cancel`).catch(() => {});
});
for (const button of $$(".vote-btn")) button.addEventListener("click", () => sendVote({ outcome: button.dataset.outcome }));
$("#rank-submit").addEventListener("click", () => sendVote({ ranking: $$(".rank-item").map((item) => item.dataset.label) }));
followForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const content = $("#follow-prompt").value.trim();
  if (!content || streaming) return;
  $("#follow-prompt").value = "";
  const history = $("#history");
  const chosen = round.sides.find((s) => s.message_id === followForm.dataset.answer);
  history.append(
    el("div", { class: "history-turn user", text: round.question || $("#question").textContent }),
    el("div", { class: "history-turn assistant", text: $(".side-body", sidesGrid.children[LABELS.indexOf(chosen.label)]).textContent }),
  );
  runBattle("/ui/compare/continue", { answer_id: followForm.dataset.answer, content }, content);
});

if (mode() === "named") spreadModels();
updateSetup();
if (data.round) applyRound(data.round);
