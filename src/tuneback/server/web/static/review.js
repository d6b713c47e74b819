// Review pages: make queues, upload prompt sets and watch them being answered, and work a
// queue from the keyboard. Plain fetch through api() from http.js, no framework.
import { api } from "./http.js";

(function () {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const say = (line, text, bad = false) => {
    if (!line) return;
    line.textContent = text;
    line.classList.toggle("bad", bad);
  };
  const checked = (form, name) => $$(`input[name=${name}]:checked`, form).map((box) => box.value);

  // -- the overview: new queue, new annotation task, task progress ----------------------

  const queueForm = $("#new-queue");
  if (queueForm) {
    queueForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(queueForm);
      const line = $(".status-line", queueForm);
      try {
        const queue = await api("POST", "/ui/review/queues", {
          name: form.get("name").trim(),
          preset: form.get("preset"),
          rule: { model: form.get("model").trim() || null, tag: form.get("tag").trim() || null },
          keys: checked(queueForm, "keys"),
          reviewers_per_item: Number(form.get("reviewers_per_item")),
          lease_minutes: Number(form.get("lease_minutes")),
        });
        window.location.href = `/review/queues/${queue.id}`;
      } catch (error) {
        say(line, error.message, true);
      }
    });
  }

  const taskForm = $("#new-task");
  if (taskForm) {
    taskForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const form = new FormData(taskForm);
      const line = $(".status-line", taskForm);
      const file = form.get("file");
      if (!file || !file.name) return say(line, "Choose a prompt file first.", true);
      say(line, `Reading ${file.name}…`);
      try {
        await api("POST", "/ui/review/tasks", {
          name: form.get("name").trim(),
          filename: file.name,
          content: await file.text(),
          models: checked(taskForm, "models"),
          keys: checked(taskForm, "keys"),
          reviewers_per_item: Number(form.get("reviewers_per_item")),
        });
        window.location.reload();
      } catch (error) {
        say(line, error.message, true);
      }
    });
  }

  const showTask = (row, task) => {
    const bar = $(".progress", row);
    bar.setAttribute("aria-valuenow", String(task.percent));
    $(".progress-done", row).style.setProperty("--part", `${task.percent}%`);
    const failed = task.failed ? ` · ${task.failed} failed` : "";
    $(".task-text", row).textContent = `${task.done + task.failed} of ${task.total} · ${task.percent}%${failed}`;
    row.dataset.complete = task.complete ? "yes" : "no";
  };
  // The queue cards are drawn by the server: while a task's answers arrive they are
  // fetched again and swapped in (every few seconds, and once more at the end), so
  // the numbers keep one home in the template.
  let queuesAsked = 0;
  const refreshQueues = async () => {
    queuesAsked = Date.now();
    const response = await fetch(window.location.pathname, { headers: { accept: "text/html" } });
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const next = fresh.querySelector(".queue-list");
    const now = $(".queue-list") || $(".empty-card");
    if (next && now) now.replaceWith(next);
  };
  const watch = (row) => {
    let seen = -1;
    const poll = async () => {
      try {
        const task = await api("GET", `/ui/review/tasks/${row.dataset.task}`);
        showTask(row, task);
        const finished = task.done + task.failed;
        const over = task.complete || !task.running;
        if (finished !== seen && (over || Date.now() - queuesAsked > 2000)) await refreshQueues();
        seen = finished;
        if (!over) setTimeout(poll, 700);
      } catch (error) {
        $(".task-text", row).textContent = error.message;
      }
    };
    poll();
  };
  $$("tr[data-task][data-complete=no]").forEach(watch);
  $$("[data-resume]").forEach((button) => button.addEventListener("click", async () => {
    await api("POST", `/ui/review/tasks/${button.dataset.resume}/resume`);
    button.remove();
    watch(button.closest("tr") || document.querySelector(`tr[data-task="${button.dataset.resume}"]`));
  }));

  // -- the work page ------------------------------------------------------------------------

  const work = $(".work-layout");
  if (!work) return;
  const queueId = work.dataset.queue;
  const runId = work.dataset.run;
  const required = work.dataset.required ? work.dataset.required.split(",") : [];
  const status = $("#work-status");
  const chosen = {};
  let busy = false;

  const choose = (button) => {
    const key = button.dataset.key;
    $$(`.choice[data-key="${key}"]`).forEach((other) => other.setAttribute("aria-pressed", "false"));
    button.setAttribute("aria-pressed", "true");
    const value = button.dataset.value;
    chosen[key] = key === "stars" ? Number(value) : value;
    say(status, "");
  };
  $$(".choice").forEach((button) => button.addEventListener("click", () => choose(button)));

  const open = (name) => {
    const box = $(`#${name}-box`);
    box.hidden = false;
    const area = $("textarea", box);
    area.focus();
    if (name === "correction") area.select();
  };
  $$("[data-open]").forEach((button) => button.addEventListener("click", () => open(button.dataset.open)));

  const next = () => window.location.replace(window.location.href.split("#")[0]);

  const submit = async () => {
    if (busy) return;
    $$(".number-answer").forEach((input) => {
      if (input.value !== "") chosen[input.dataset.key] = Number(input.value);
    });
    const missing = required.filter((key) => chosen[key] === undefined);
    if (missing.length) {
      say(status, `Answer ${missing.join(", ")} first.`, true);
      return;
    }
    const comment = $("#comment").value.trim();
    const original = $("#correction").defaultValue.trim();
    const corrected = $("#correction").value.trim();
    const correction = !$("#correction-box").hidden && corrected && corrected !== original ? corrected : null;
    busy = true;
    try {
      await api("POST", `/ui/review/queues/${queueId}/items/${runId}/submit`, {
        answers: chosen, comment: comment || null, correction,
      });
      say(status, "Saved. Next item…");
      next();
    } catch (error) {
      busy = false;
      say(status, error.message, true);
    }
  };
  const skip = async () => {
    if (busy) return;
    busy = true;
    try {
      await api("POST", `/ui/review/queues/${queueId}/items/${runId}/skip`);
      say(status, "Skipped. Next item…");
      next();
    } catch (error) {
      busy = false;
      say(status, error.message, true);
    }
  };
  $("#submit").addEventListener("click", submit);
  $("#skip").addEventListener("click", skip);

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("textarea, input, select");
    if (typing) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submit();
      } else if (event.key === "Escape") {
        event.target.blur();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    const shortcut = $(`.choice[data-shortcut="${key}"]`);
    if (shortcut) {
      event.preventDefault();
      choose(shortcut);
    } else if (key === "c" || key === "e") {
      event.preventDefault();
      open(key === "c" ? "comment" : "correction");
    } else if (key === "s") {
      event.preventDefault();
      skip();
    } else if (event.key === "Enter" && !event.target.closest("button:not(.choice), a")) {
      event.preventDefault();
      submit();
    }
  });
})();
