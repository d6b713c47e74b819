// tuneback chat page: streaming replies, feedback on every answer, no framework.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const state = JSON.parse($("#state").textContent);
const settings = state.settings;
let conversation = JSON.parse($("#conversation-data").textContent);
let streaming = null; // {runId, controller}

const messagesEl = $("#messages");
const threadEl = $("#thread");
const prompt = $("#prompt");
const sendBtn = $("#send");
const stopBtn = $("#stop");

const FACES = ["😞", "🙁", "😐", "🙂", "😀"];
const ICONS = {
  up: '<path d="M7 10v11M7 10l4-7a2 2 0 0 1 3 2l-1 5h6a2 2 0 0 1 2 2.3l-1.4 7A2 2 0 0 1 17.6 21H7"/><path d="M3 10h4v11H3z"/>',
  down: '<path d="M17 14V3M17 14l-4 7a2 2 0 0 1-3-2l1-5H5a2 2 0 0 1-2-2.3l1.4-7A2 2 0 0 1 6.4 3H17"/><path d="M21 14h-4V3h4z"/>',
  comment: '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/>',
  edit: '<path d="M4 20h4L19 9l-4-4L4 16v4z"/><path d="M14 6l4 4"/>',
  copy: '<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2"/>',
  check: '<path d="M5 12l5 5L20 7"/>',
  regenerate: '<path d="M20 11a8 8 0 1 0-2.3 5.7"/><path d="M20 4v7h-7"/>',
  pencil: '<path d="M4 20h4L19 9l-4-4L4 16v4z"/>',
  compare: '<rect x="3" y="4" width="7" height="16" rx="1.5"/><rect x="14" y="4" width="7" height="16" rx="1.5"/>',
};
const MOUTHS = ["M8 17q4-4.5 8 0", "M8.5 16.5q3.5-2.2 7 0", "M8.5 15.5h7", "M8.5 14.5q3.5 2.2 7 0", "M8 14q4 4.5 8 0"];
const faceIcon = (index) => `<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9"/><path d="M9 9.5v.5M15 9.5v.5"/><path d="${MOUTHS[index]}"/></svg>`;
const icon = (name) => `<svg viewBox="0 0 24 24" aria-hidden="true">${ICONS[name]}</svg>`;

function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "html") node.innerHTML = value; // only ever server-sanitised HTML or our icons
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of [].concat(children)) if (child) node.append(child);
  return node;
}

function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), 4500);
}

function scrollToEnd(force = false) {
  const nearEnd = threadEl.scrollHeight - threadEl.scrollTop - threadEl.clientHeight < 160;
  if (force || nearEnd) threadEl.scrollTop = threadEl.scrollHeight;
}

// ---------- rendering ----------

function renderUser(message) {
  const wrap = el("div", { class: "message user", "data-id": message.id });
  wrap.append(el("div", { class: "bubble-user", text: message.content }));
  const tools = el("div", { class: "user-tools" }, [
    el("button", {
      type: "button", class: "act", "aria-label": "Edit this message", title: "Edit",
      html: icon("pencil"), onclick: () => startEdit(wrap, message),
    }),
  ]);
  if (!conversation?.ended) wrap.append(tools);
  return wrap;
}

function formatLatency(ms) {
  if (ms === null || ms === undefined) return null;
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function metaLine(run) {
  const parts = [run.model];
  const latency = formatLatency(run.latency_ms);
  if (latency) parts.push(latency);
  if (run.completion_tokens) parts.push(`${run.completion_tokens} tokens`);
  const meta = el("span", { class: "meta", text: parts.join(" · ") });
  meta.append(" · ", el("a", { href: `${state.run_link}${run.id}`, target: "_blank", rel: "noopener", text: "run" }));
  return meta;
}

function renderAssistant(message, options = {}) {
  const wrap = el("div", { class: "message assistant", "data-id": message.id || "" });
  const body = el("div", { class: "assistant-body md" });
  if (message.html !== undefined && message.html !== null) body.innerHTML = message.html;
  wrap.append(body);
  if (message.run) finishAssistant(wrap, message, options);
  return wrap;
}

function finishAssistant(wrap, message, { latest = true } = {}) {
  const run = message.run;
  wrap.dataset.id = message.id || "";
  wrap.dataset.run = run.id;
  if (run.status === "cancelled") wrap.append(el("p", { class: "cancelled-note", text: "Stopped." }));
  if (run.status === "error") wrap.append(el("div", { class: "error-box", text: run.error }));
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
  if (message.branch && message.branch.count > 1) {
    row.append(el("span", { class: "branch", text: `answer ${message.branch.index} of ${message.branch.count}` }));
  }
  row.append(metaLine(run));

  const notes = [];
  if (given.comment) notes.push(el("div", {}, ["Your comment: ", el("q", { text: given.comment.comment })]));
  if (given.correction) notes.push(el("div", { text: "You suggested a better answer — thank you." }));
  const reasons = given.thumbs?.reasons || [];
  if (reasons.length) notes.push(el("div", { text: `Reasons: ${reasons.join(", ")}` }));
  if (notes.length) container.append(el("div", { class: "given" }, notes));
  return container;
}

function closePanels(wrap) {
  wrap.querySelectorAll(".panel").forEach((panel) => panel.remove());
}

function openReasons(wrap, message, recorded, polarity) {
  closePanels(wrap);
  const options = polarity === "negative" ? settings.negative_reasons : settings.positive_reasons;
  const chosen = new Set(recorded.reasons || []);
  const comment = el("textarea", { placeholder: "Anything else? (optional)", "aria-label": "Comment" });
  const chips = el("div", { class: "chips" }, options.map((reason) => {
    const chip = el("button", {
      type: "button", class: "chip", text: reason, "aria-pressed": String(chosen.has(reason)),
      onclick: () => {
        chosen.has(reason) ? chosen.delete(reason) : chosen.add(reason);
        chip.setAttribute("aria-pressed", String(chosen.has(reason)));
      },
    });
    return chip;
  }));
  const panel = el("div", { class: "panel", role: "group", "aria-label": "Why?" }, [
    el("p", { class: "panel-title", text: polarity === "negative" ? "What was wrong?" : "What was good?" }),
    chips,
    comment,
    el("div", { class: "panel-actions" }, [
      el("button", { type: "button", class: "small-btn", text: "Skip", onclick: () => panel.remove() }),
      el("button", {
        type: "button", class: "primary-btn", text: "Send feedback",
        onclick: async () => {
          try {
            await api("POST", `/ui/runs/${message.run.id}/feedback`, {
              key: "thumbs", value: recorded.value, reasons: [...chosen],
              comment: comment.value.trim() || null,
            }).then((fresh) => {
              message.feedback = (message.feedback || []).filter((f) => f.key !== "thumbs").concat(fresh);
            });
            panel.remove();
            rerender(wrap, message);
            toast("Thanks — your feedback was saved.");
          } catch (error) { toast(error.message); }
        },
      }),
    ]),
  ]);
  wrap.append(panel);
  chips.querySelector("button")?.focus();
}

function openText(wrap, message, key) {
  closePanels(wrap);
  const given = (message.feedback || []).find((f) => f.key === key);
  const isCorrection = key === "correction";
  const area = el("textarea", {
    "aria-label": isCorrection ? "A better answer" : "Your comment",
    placeholder: isCorrection ? "Write the answer you wished for…" : "What do you think of this answer?",
  });
  area.value = isCorrection ? (given?.correction || $(".assistant-body", wrap).innerText) : (given?.comment || "");
  const panel = el("div", { class: "panel" }, [
    el("p", { class: "panel-title", text: isCorrection ? "Suggest a better answer" : "Comment" }),
    area,
    el("div", { class: "panel-actions" }, [
      el("button", { type: "button", class: "small-btn", text: "Cancel", onclick: () => panel.remove() }),
      el("button", {
        type: "button", class: "primary-btn", text: "Save",
        onclick: async () => {
          const text = area.value.trim();
          if (!text) return toast(isCorrection ? "Write the better answer first." : "Write a comment first.");
          try {
            const body = isCorrection ? { key, correction: text } : { key, comment: text };
            const fresh = await api("POST", `/ui/runs/${message.run.id}/feedback`, body);
            message.feedback = (message.feedback || []).filter((f) => f.key !== key).concat(fresh);
            panel.remove();
            rerender(wrap, message);
            toast(isCorrection ? "Thanks — your better answer was saved." : "Comment saved.");
          } catch (error) { toast(error.message); }
        },
      }),
    ]),
  ]);
  wrap.append(panel);
  area.focus();
}

function rerender(wrap, message) {
  const latest = wrap === messagesEl.querySelector(".message.assistant:last-of-type") || isLatest(wrap);
  const fresh = renderAssistant(message, { latest });
  wrap.replaceWith(fresh);
}

function isLatest(wrap) {
  const all = [...messagesEl.querySelectorAll(".message.assistant")];
  return all[all.length - 1] === wrap;
}

async function copyAnswer(button, message) {
  const text = message.content;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = el("textarea", { style: "position:fixed;opacity:0" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
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

async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) yield { event, data: JSON.parse(data) };
    }
  }
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
        if (!text) bodyEl.textContent = "";
        text += data.text;
        bodyEl.textContent = text;
        bodyEl.classList.add("cursor");
        scrollToEnd();
      } else if (event === "done" || event === "error") {
        bodyEl.classList.remove("streaming", "cursor");
        bodyEl.innerHTML = data.html || "";
        message = {
          id: data.message_id, content: text, html: data.html, run: data.run,
          feedback: [], branch: data.branch,
        };
        if (event === "error" && !data.run) wrap.append(el("div", { class: "error-box", text: data.message }));
        if (data.run) finishAssistant(wrap, message);
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
    setStreaming(false);
    scrollToEnd();
  }
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
      el("button", { type: "button", class: "small-btn", text: "Cancel", onclick: () => box.replaceWith(renderUser(message)) }),
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

async function refreshSidebar(query = "") {
  try {
    const items = await api("GET", `/ui/conversations${query ? `?q=${encodeURIComponent(query)}` : ""}`);
    const list = $("#conversation-list");
    list.replaceChildren(...(items.length ? items.map((item) => el("a", {
      href: `/c/${item.id}`, title: item.title, text: item.title,
      class: `conversation-link${conversation && item.id === conversation.id ? " active" : ""}`,
      "aria-current": conversation && item.id === conversation.id ? "page" : null,
    })) : [el("p", { class: "sidebar-empty", text: query ? "Nothing matches." : "No conversations yet. Ask something to start one." })]));
  } catch (error) { toast(error.message); }
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

function wire() {
  prompt.addEventListener("input", autosize);
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
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

function renderConversation() {
  if (!conversation) return;
  const messages = conversation.messages;
  const lastAssistant = messages.map((m) => m.role).lastIndexOf("assistant");
  messages.forEach((message, index) => {
    messagesEl.append(message.role === "user"
      ? renderUser(message)
      : renderAssistant(message, { latest: index === lastAssistant }));
  });
  scrollToEnd(true);
}

wire();
renderConversation();
showModelStatus();
pollModels();
prompt.focus();
