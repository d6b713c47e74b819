// tuneback chat page: streaming replies, feedback on every answer, no framework.
import { api, csrfHeaders, readEvents } from "./http.js";
import { $, FACES, decorate, el, errorBox, faceIcon, icon, saveOnCtrlEnter, timeOf, toast, writeClipboard } from "./dom.js";
import { adoptSidebar, followOpenConversation, refreshSidebar } from "./chat-sidebar.js";
import { openReasons, openText, setupPanels } from "./chat-panels.js";

const state = JSON.parse($("#state").textContent);
const settings = state.settings;
let conversation = JSON.parse($("#conversation-data").textContent);
let streaming = null; // {runId, controller}

const messagesEl = $("#messages");
const threadEl = $("#thread");
const prompt = $("#prompt");
const sendBtn = $("#send");
const stopBtn = $("#stop");


function scrollToEnd(force = false) {
  const nearEnd = threadEl.scrollHeight - threadEl.scrollTop - threadEl.clientHeight < 160;
  // "instant": the stylesheet's smooth scrolling would make a long conversation glide to its end.
  if (force || nearEnd) threadEl.scrollTo({ top: threadEl.scrollHeight, behavior: "instant" });
}

// ‹ 1/2 › between the versions of a message (regenerated answers, edited questions).
function branchNav(message, noun) {
  const siblings = message.siblings || [];
  if (siblings.length < 2) return null;
  const index = siblings.indexOf(message.id);
  const step = (offset, label, text) => el("button", {
    type: "button", class: "act", "aria-label": `${label} ${noun}`, title: `${label} ${noun}`, text,
    disabled: index + offset < 0 || index + offset >= siblings.length,
    onclick: () => showBranch(siblings[index + offset]),
  });
  return el("span", { class: "branch-nav", role: "group", "aria-label": `${noun} ${index + 1} of ${siblings.length}` }, [
    step(-1, "Previous", "‹"),
    el("span", { class: "count branch", text: `${index + 1}/${siblings.length}` }),
    step(1, "Next", "›"),
  ]);
}

async function showBranch(messageId) {
  if (!conversation || streaming || !messageId) return;
  try {
    await loadBranch(messageId, { keepScroll: true });
    history.replaceState(null, "", `/c/${conversation.id}?m=${encodeURIComponent(messageId)}`);
  } catch (error) { toast(error.message); }
}

async function loadBranch(messageId, { keepScroll = false } = {}) {
  const query = messageId ? `?through=${encodeURIComponent(messageId)}` : "";
  conversation = await api("GET", `/ui/conversations/${conversation.id}${query}`);
  renderConversation({ keepScroll });
}

// ---------- rendering ----------

function renderUser(message) {
  const nav = branchNav(message, "version");
  const wrap = el("div", { class: `message user${nav ? " has-branches" : ""}`, "data-id": message.id });
  wrap.append(el("div", { class: "bubble-user", text: message.content }));
  const tools = el("div", { class: "user-tools" }, [timeOf(message.created_at), nav]);
  if (!conversation?.ended) {
    tools.append(el("button", {
      type: "button", class: "act", "aria-label": "Edit this message", title: "Edit",
      html: icon("pencil"), onclick: () => startEdit(wrap, message),
    }));
  }
  if (tools.childElementCount) wrap.append(tools);
  return wrap;
}

function formatLatency(ms) {
  if (ms === null || ms === undefined) return null;
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function metaLine(run, createdAt) {
  const parts = [run.model];
  const latency = formatLatency(run.latency_ms);
  if (latency) parts.push(latency);
  if (run.completion_tokens) parts.push(`${run.completion_tokens} tokens`);
  const meta = el("span", { class: "meta", text: parts.join(" · ") });
  meta.append(" · ", el("a", { href: `${state.run_link}${run.id}`, target: "_blank", rel: "noopener", text: "run" }));
  const time = timeOf(createdAt);
  if (time) meta.append(" · ", time);
  return meta;
}

function renderAssistant(message, options = {}) {
  const wrap = el("div", { class: "message assistant", "data-id": message.id || "" });
  const body = el("div", { class: "assistant-body md" });
  if (message.html !== undefined && message.html !== null) {
    body.innerHTML = message.html;
    decorate(body);
  }
  wrap.append(body);
  // Placed before its row is built, so the row can see the question above it.
  options.mount?.(wrap);
  if (message.run) finishAssistant(wrap, message, options);
  return wrap;
}

function finishAssistant(wrap, message, { latest = true } = {}) {
  const run = message.run;
  wrap.dataset.id = message.id || "";
  wrap.dataset.run = run.id;
  if (run.status === "cancelled") wrap.append(el("p", { class: "cancelled-note", text: "Stopped." }));
  if (run.status === "error") {
    const canRetry = latest && message.id && !conversation?.ended;
    wrap.append(errorBox(run.error, canRetry ? () => regenerate(wrap, message) : null));
  }
  if (!message.id) return; // nothing was said: nothing to rate
  wrap.append(feedbackRow(wrap, message, latest));
}

function feedbackRow(wrap, message, latest) {
  const run = message.run;
  const given = Object.fromEntries((message.feedback || []).map((f) => [f.key, f]));
  const ratingAllowed = latest || !settings.latest_only;
  const locked = (key) => !settings.changeable && given[key];
  const row = el("div", { class: "feedback-row", role: "group", "aria-label": "Rate this answer" });
  const widgets = settings.feedback;

  const rate = async (key, value, button, extra = {}) => {
    try {
      if (given[key] && given[key].value === value && settings.changeable && !extra.keep) {
        await api("DELETE", `/ui/feedback/${given[key].id}`);
        delete given[key];
      } else {
        given[key] = await api("POST", `/ui/runs/${run.id}/feedback`, { key, value, ...extra });
      }
      message.feedback = Object.values(given);
      refresh();
      return given[key];
    } catch (error) {
      toast(error.message);
      return null;
    }
  };

  const container = el("div", { class: "feedback" }, [row]);
  const nav = branchNav(message, "answer");
  if (nav) row.append(nav, el("span", { class: "sep", "aria-hidden": "true" }));
  const refresh = () => container.replaceWith(feedbackRow(wrap, message, latest));

  if (widgets.includes("thumbs")) {
    for (const [value, label, cls] of [["up", "Good answer", "thumb-up"], ["down", "Bad answer", "thumb-down"]]) {
      row.append(el("button", {
        type: "button", class: `act ${cls}`, "aria-label": label, title: label,
        "aria-pressed": String(given.thumbs?.value === value),
        disabled: !ratingAllowed || (locked("thumbs") && given.thumbs.value !== value),
        html: icon(value),
        onclick: async () => {
          const recorded = await rate("thumbs", value);
          if (recorded && value === "down" && settings.negative_reasons.length) openReasons(wrap, message, recorded, "negative");
          if (recorded && value === "up" && settings.positive_reasons.length) openReasons(wrap, message, recorded, "positive");
        },
      }));
    }
    row.append(el("span", { class: "sep", "aria-hidden": "true" }));
  }
  if (widgets.includes("faces")) {
    FACES.forEach((face, index) => {
      row.append(el("button", {
        type: "button", class: `act face face-${index}`, html: faceIcon(index),
        "aria-label": `Rate ${index + 1} of 5`, title: ["Very bad", "Bad", "Okay", "Good", "Very good"][index],
        "aria-pressed": String(given.faces?.value === face),
        disabled: !ratingAllowed || (locked("faces") && given.faces.value !== face),
        onclick: () => rate("faces", face),
      }));
    });
    row.append(el("span", { class: "sep", "aria-hidden": "true" }));
  }
  if (widgets.includes("stars")) {
    const current = Number(given.stars?.value || 0);
    for (let n = 1; n <= 5; n++) {
      row.append(el("button", {
        type: "button", class: `act star${n <= current ? " lit" : ""}`, text: "★",
        "aria-label": `${n} star${n > 1 ? "s" : ""}`, "aria-pressed": String(current === n),
        disabled: !ratingAllowed || (locked("stars") && current !== n),
        onclick: () => rate("stars", n),
      }));
    }
    row.append(el("span", { class: "sep", "aria-hidden": "true" }));
  }
  if (widgets.includes("comment")) {
    row.append(el("button", {
      type: "button", class: "act", "aria-label": "Comment on this answer", title: "Comment",
      "aria-pressed": String(Boolean(given.comment)), disabled: !ratingAllowed,
      html: icon("comment"), onclick: () => openText(wrap, message, "comment"),
    }));
  }
  if (widgets.includes("correction")) {
    row.append(el("button", {
      type: "button", class: "act", "aria-label": "Suggest a better answer", title: "Suggest a better answer",
      "aria-pressed": String(Boolean(given.correction)), disabled: !ratingAllowed,
      html: icon("edit"), onclick: () => openText(wrap, message, "correction"),
    }));
  }
  row.append(el("button", {
    type: "button", class: "act", "aria-label": "Copy the answer", title: "Copy",
    html: icon("copy"), onclick: (event) => copyAnswer(event.currentTarget, message),
  }));
  if (latest && !conversation?.ended) {
    row.append(el("button", {
      type: "button", class: "act", "aria-label": "Regenerate the answer", title: "Regenerate",
      html: icon("regenerate"), onclick: () => regenerate(wrap, message),
    }));
  }
  const question = wrap.previousElementSibling?.querySelector(".bubble-user")?.textContent;
  if (question && state.sections.includes("compare")) {
    const query = new URLSearchParams({ prompt: question, model: run.model || "" });
    row.append(el("a", {
      class: "act", href: `/compare?${query}`, "aria-label": "Compare with another model",
      title: "Compare with another model", html: icon("compare"),
    }));
  }
  row.append(metaLine(run, message.created_at));

  const notes = [];
  if (given.comment) notes.push(el("div", {}, ["Your comment: ", el("q", { text: given.comment.comment })]));
  if (given.correction) {
    notes.push(el("details", { class: "given-correction" }, [
      el("summary", { text: "You suggested a better answer — thank you." }),
      el("div", { class: "md correction-text", text: given.correction.correction }),
    ]));
  }
  const reasons = given.thumbs?.reasons || [];
  if (reasons.length) notes.push(el("div", { text: `Reasons: ${reasons.join(", ")}` }));
  if (given.thumbs?.comment) notes.push(el("div", {}, ["You added: ", el("q", { text: given.thumbs.comment })]));
  if (notes.length) container.append(el("div", { class: "given" }, notes));
  return container;
}

function rerender(wrap, message) {
  // The answer may have been redrawn since the caller took hold of it (a rating
  // saved while another panel was being opened): redraw the one on screen.
  const live = wrap.isConnected
    ? wrap
    : messagesEl.querySelector(`.message[data-run="${CSS.escape(message.run.id)}"]`);
  if (!live) return;
  // A panel still open under it (a better answer being written) stays open, as typed.
  const open = [...live.querySelectorAll(".panel")];
  const fresh = renderAssistant(message, { latest: isLatest(live), mount: (drawn) => live.replaceWith(drawn) });
  fresh.append(...open);
}

// Only the last message on screen is the latest: an answer with turns below it is not.
function isLatest(wrap) {
  const all = messagesEl.querySelectorAll(".message");
  return all[all.length - 1] === wrap;
}

async function copyAnswer(button, message) {
  await writeClipboard(message.content);
  button.innerHTML = icon("check");
  setTimeout(() => (button.innerHTML = icon("copy")), 1500);
  api("POST", `/ui/runs/${message.run.id}/feedback`, { key: "copied", kind: "implicit" }).catch(() => {});
}

// ---------- streaming ----------

function options() {
  const temperature = $("#temperature");
  const maxTokens = Number($("#max-tokens").value);
  return {
    model: $("#model").value,
    temperature: temperature.dataset.unset === "true" ? null : Number(temperature.value),
    max_tokens: maxTokens > 0 ? maxTokens : null,
  };
}

function setStreaming(active) {
  stopBtn.hidden = !active;
  sendBtn.hidden = active;
  prompt.disabled = active || Boolean(conversation?.ended);
  if (!active) {
    streaming = null;
    prompt.focus();
  }
  updateSendState();
}

async function streamReply(url, body, { userMessage = null } = {}) {
  $("#empty-state").hidden = true;
  let answered = null; // the message to show the branch of once the answer is stored
  let userEl = null;
  if (userMessage !== null) {
    userEl = renderUser({ id: "", content: userMessage });
    messagesEl.append(userEl);
  }
  const wrap = renderAssistant({ html: "" });
  const bodyEl = $(".assistant-body", wrap);
  bodyEl.classList.add("streaming");
  bodyEl.append(el("span", { class: "typing", "aria-label": "Thinking" }, [el("span"), el("span"), el("span")]));
  messagesEl.append(wrap);
  scrollToEnd(true);

  const controller = new AbortController();
  streaming = { runId: null, controller };
  setStreaming(true);
  let text = "";
  let message = { feedback: [] };
  try {
    const response = await fetch(url, {
      method: "POST", headers: csrfHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.error?.message || `request failed (${response.status})`);
    }
    for await (const { event, data } of readEvents(response)) {
      if (event === "start") {
        streaming.runId = data.run_id;
        answered = data.user_message_id;
        if (userEl) {
          userEl.remove();
          userEl = renderUser({ id: data.user_message_id, content: userMessage });
          wrap.before(userEl);
        }
        if (!conversation) {
          conversation = { id: data.conversation_id, ended: false, messages: [] };
          history.replaceState(null, "", `/c/${data.conversation_id}`);
          $("#end-conversation").hidden = false;
          $("#system-prompt").disabled = true;
          refreshSidebar();
        }
      } else if (event === "delta") {
        // The answer so far comes rendered by the server's one markdown renderer.
        text += data.text;
        if (data.html !== undefined) {
          bodyEl.innerHTML = data.html;
          decorate(bodyEl);
        } else {
          bodyEl.textContent = text;
        }
        bodyEl.classList.add("cursor");
        scrollToEnd();
      } else if (event === "done" || event === "error") {
        bodyEl.classList.remove("streaming", "cursor");
        bodyEl.innerHTML = data.html || "";
        decorate(bodyEl);
        if (data.message_id) answered = data.message_id;
        else if (event === "error") toast(data.message);
        message = {
          id: data.message_id, content: text, html: data.html, run: data.run,
          feedback: [], branch: data.branch,
        };
        if (event === "error" && !data.run) wrap.append(el("div", { class: "error-box", text: data.message }));
        // With a conversation, the redraw below brings the answer's controls: drawn now, a
        // rating clicked before that redraw would land on a row it throws away.
        if (data.run && !(answered && conversation)) finishAssistant(wrap, message);
        previousRowsNotLatest(wrap);
      }
    }
  } catch (error) {
    bodyEl.classList.remove("streaming", "cursor");
    if (error.name === "AbortError") {
      bodyEl.textContent = text;
      wrap.append(el("p", { class: "cancelled-note", text: "Stopped." }));
    } else {
      if (!text) bodyEl.textContent = "";
      wrap.append(el("div", { class: "error-box", text: error.message }));
    }
  } finally {
    // What a reload would show: the branch with this answer, its ‹ n/m ›, a failure's Retry.
    // Drawn before the composer comes back, so nothing clicked after that is redrawn away.
    if (answered && conversation && !controller.signal.aborted) {
      try {
        await loadBranch(answered);
        history.replaceState(null, "", `/c/${conversation.id}`);
      } catch (error) {
        toast(error.message);
        if (message?.run && wrap.isConnected) finishAssistant(wrap, message);
      }
    }
    setStreaming(false);
    scrollToEnd();
  }
}

// An answer not stored yet: still streaming (in another tab, or before a reload) or failed.
function renderPending(pending) {
  const wrap = el("div", { class: "message assistant pending", "data-reply-to": pending.reply_to });
  if (pending.status === "answering") {
    const body = el("div", { class: "assistant-body md streaming" });
    body.innerHTML = pending.html || "";
    decorate(body);
    wrap.append(body, el("p", { class: "still-answering", role: "status", text: "Still answering…" }));
    clearTimeout(renderPending.timer);
    renderPending.timer = setTimeout(refreshPending, 1000);
    return wrap;
  }
  const run = pending.run;
  const retry = conversation?.ended ? null : () => retryQuestion(wrap, pending.reply_to);
  const text = pending.status === "error" ? run.error : "Stopped before it said anything.";
  wrap.append(errorBox(text, retry));
  if (run) wrap.append(el("div", { class: "feedback-row" }, [metaLine(run)]));
  return wrap;
}

async function refreshPending() {
  if (!conversation || streaming) return;
  const through = new URLSearchParams(location.search).get("m");
  try {
    await loadBranch(through, { keepScroll: true });
    scrollToEnd();
  } catch { /* the next look tries again */ }
}

function retryQuestion(wrap, messageId) {
  if (streaming) return;
  wrap.remove();
  const { model, temperature, max_tokens } = options();
  streamReply(`/ui/messages/${messageId}/retry`, { model, temperature, max_tokens });
}

function previousRowsNotLatest(current) {
  // Once a newer answer exists, older ones lose "regenerate" (and rating, if only the latest counts).
  const messages = [...messagesEl.querySelectorAll(".message.assistant")];
  for (const wrap of messages) {
    if (wrap === current) continue;
    wrap.querySelector('[aria-label="Regenerate the answer"]')?.remove();
    if (settings.latest_only) {
      wrap.querySelectorAll(".feedback-row .act").forEach((button) => {
        if (!/Copy/.test(button.getAttribute("aria-label"))) button.disabled = true;
      });
    }
  }
}

function send() {
  const content = prompt.value.trim();
  if (!content || streaming) return;
  prompt.value = "";
  autosize();
  const chosen = options();
  streamReply("/ui/chat", {
    content,
    conversation_id: conversation?.id || null,
    // After the branch on screen, not after whichever message is newest.
    parent_id: conversation?.messages?.at(-1)?.id || null,
    system_prompt: conversation ? null : ($("#system-prompt").value.trim() || null),
    ...chosen,
  }, { userMessage: content });
}

function regenerate(wrap, message) {
  if (streaming) return;
  wrap.remove();
  const { model, temperature, max_tokens } = options();
  streamReply(`/ui/messages/${message.id}/regenerate`, { model, temperature, max_tokens });
}

function startEdit(wrap, message) {
  if (streaming || !message.id) return;
  const area = el("textarea", { "aria-label": "Edit your message" });
  area.value = message.content;
  const box = el("div", { class: "edit-box" }, [
    area,
    el("div", { class: "edit-actions" }, [
      el("span", { class: "keys-hint", text: "Ctrl+Enter to send · Esc to cancel" }),
      el("button", { type: "button", class: "small-btn", text: "Cancel", onclick: () => wrap.replaceWith(renderUser(message)) }),
      el("button", {
        type: "button", class: "primary-btn", text: "Send",
        onclick: () => {
          const content = area.value.trim();
          if (!content) return;
          let next = box.closest(".message").nextElementSibling;
          while (next) { const after = next.nextElementSibling; next.remove(); next = after; }
          box.closest(".message").remove();
          const { model, temperature, max_tokens } = options();
          streamReply(`/ui/messages/${message.id}/edit`, { content, model, temperature, max_tokens }, { userMessage: content });
        },
      }),
    ]),
  ]);
  wrap.replaceChildren(box);
  saveOnCtrlEnter(area, box.querySelector(".primary-btn"));
  area.focus();
}

// ---------- page wiring ----------

function autosize() {
  prompt.style.height = "auto";
  prompt.style.height = `${Math.min(prompt.scrollHeight, window.innerHeight * 0.4)}px`;
  updateSendState();
}

function updateSendState() {
  const model = state.models.find((m) => m.spec === $("#model").value);
  sendBtn.disabled = !prompt.value.trim() || Boolean(streaming) || model?.status !== "ready";
}

function showModelStatus() {
  const model = state.models.find((m) => m.spec === $("#model").value) || state.models[0];
  const pill = $("#model-status");
  pill.className = `status-pill ${model.status}`;
  pill.textContent = { loading: "loading…", ready: "ready", error: "unavailable" }[model.status];
  const banner = $("#loading-banner");
  banner.hidden = model.status === "ready";
  banner.classList.toggle("error", model.status === "error");
  $("#loading-text").textContent = model.status === "error"
    ? `The model could not start: ${model.error}`
    : "Loading the model — this takes a moment the first time. You can type meanwhile.";
  prompt.placeholder = `Message ${model.name}`;
  updateSendState();
}

async function pollModels() {
  try {
    const fresh = await api("GET", "/ui/state");
    state.models = fresh.models;
  } catch { /* keep the last known state; the next poll tries again */ }
  showModelStatus();
  if (state.models.some((m) => m.status === "loading")) setTimeout(pollModels, 1000);
}

function setSidebar(open) {
  $("#app").classList.toggle("sidebar-open", open);
  $("#scrim").hidden = !open;
  $("#open-sidebar").setAttribute("aria-expanded", String(open));
}

// On touch keyboards Enter is the only way to a new line: there it adds one, and the button sends.
const touchKeyboard = window.matchMedia("(pointer: coarse)").matches;

// Esc: stop the answer, else close the newest panel or edit box, else the settings or the phone sidebar.
function onEscape(event) {
  if (event.key !== "Escape" || event.defaultPrevented || event.isComposing) return;
  if (streaming) { stopBtn.click(); return; }
  const panel = [...messagesEl.querySelectorAll(".panel")].pop();
  if (panel) { panel.remove(); return; }
  const editing = messagesEl.querySelector(".edit-box .small-btn");
  if (editing) { editing.click(); return; }
  const open = document.querySelector(".conversation-item.editing .small-btn, .conversation-item.confirming .small-btn");
  if (open) { open.click(); return; }
  if (!$("#settings").hidden) { $("#settings-toggle").click(); return; }
  if ($("#app").classList.contains("sidebar-open")) setSidebar(false);
}

function wire() {
  document.addEventListener("keydown", onEscape);
  if (touchKeyboard) {
    prompt.enterKeyHint = "enter";
    const hint = $("#composer-hint");
    if (!conversation?.ended) hint.textContent = "Return adds a new line · tap the arrow to send";
  }
  prompt.addEventListener("input", autosize);
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !touchKeyboard) {
      event.preventDefault();
      if (!sendBtn.disabled) send();
    }
  });
  $("#composer").addEventListener("submit", (event) => { event.preventDefault(); send(); });
  stopBtn.addEventListener("click", async () => {
    if (!streaming) return;
    // Another server process may be streaming this answer (tuneback serve
    // --workers N): if this one could not stop it, closing the stream makes the
    // one that holds it stop and keep the partial answer.
    const stopped = streaming.runId
      ? await api("POST", `/ui/runs/${streaming.runId}/cancel`).catch(() => ({}))
      : {};
    if (!stopped.cancelled && streaming) streaming.controller.abort();
  });
  $("#model").addEventListener("change", showModelStatus);
  $("#settings-toggle").addEventListener("click", (event) => {
    const panel = $("#settings");
    panel.hidden = !panel.hidden;
    event.currentTarget.setAttribute("aria-expanded", String(!panel.hidden));
  });
  const temperature = $("#temperature");
  temperature.addEventListener("input", () => {
    temperature.dataset.unset = "false";
    $("#temperature-value").textContent = temperature.value;
  });
  $("#temperature-reset").addEventListener("click", () => {
    temperature.dataset.unset = "true";
    $("#temperature-value").textContent = "default";
  });
  $("#end-conversation").addEventListener("click", async () => {
    if (!conversation) return;
    try {
      await api("POST", `/ui/conversations/${conversation.id}/end`);
      window.location.href = "/";
    } catch (error) { toast(error.message); }
  });
  let searchTimer;
  $("#search").addEventListener("input", (event) => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => refreshSidebar(event.target.value.trim()), 200);
  });
  document.querySelectorAll(".suggestion").forEach((button) => button.addEventListener("click", () => {
    prompt.value = button.textContent;
    autosize();
    prompt.focus();
  }));
  $("#open-sidebar").addEventListener("click", () => setSidebar(true));
  $("#close-sidebar").addEventListener("click", () => setSidebar(false));
  $("#scrim").addEventListener("click", () => setSidebar(false));
}

function renderConversation({ keepScroll = false } = {}) {
  if (!conversation) return;
  const top = threadEl.scrollTop;
  messagesEl.querySelectorAll(".message").forEach((node) => node.remove());
  const messages = conversation.messages;
  $("#empty-state").hidden = messages.length > 0;
  const last = messages.length - 1;
  messages.forEach((message, index) => {
    if (message.role === "user") messagesEl.append(renderUser(message));
    else renderAssistant(message, { latest: index === last, mount: (wrap) => messagesEl.append(wrap) });
  });
  if (conversation.pending) messagesEl.append(renderPending(conversation.pending));
  if (keepScroll) threadEl.scrollTo({ top, behavior: "instant" });
  else scrollToEnd(true);
}

followOpenConversation(() => conversation);
setupPanels({ settings, rerender });
wire();
adoptSidebar();
renderConversation();
// Land on the latest message at once, also after late styles and fonts change the heights.
if (conversation) window.addEventListener("load", () => scrollToEnd(true), { once: true });
showModelStatus();
pollModels();
prompt.focus();
