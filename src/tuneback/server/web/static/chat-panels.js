// The panels under an answer: why a rating was given, a comment, a better answer.

import { api } from "./http.js";
import { el, saveOnCtrlEnter, toast } from "./dom.js";

// The project's reasons to offer and how to redraw an answer once its feedback changed.
let settings = { negative_reasons: [], positive_reasons: [] };
let rerender = () => {};

export function setupPanels(options) {
  ({ settings, rerender } = options);
}

export function closePanels(wrap) {
  wrap.querySelectorAll(".panel").forEach((panel) => panel.remove());
}

export function openReasons(wrap, message, recorded, polarity) {
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
  saveOnCtrlEnter(comment, panel.querySelector(".primary-btn"));
  chips.querySelector("button")?.focus();
}

export function openText(wrap, message, key) {
  closePanels(wrap);
  const given = (message.feedback || []).find((f) => f.key === key);
  const isCorrection = key === "correction";
  const area = el("textarea", {
    "aria-label": isCorrection ? "A better answer" : "Your comment",
    placeholder: isCorrection ? "Write the answer you wished for…" : "What do you think of this answer?",
    rows: isCorrection ? 14 : 3, spellcheck: isCorrection ? "false" : null,
  });
  // A correction starts from the answer's markdown, so code fences and tables survive into training.
  area.value = isCorrection ? (given?.correction || message.content || "") : (given?.comment || "");
  const panel = el("div", { class: `panel${isCorrection ? " panel-wide" : ""}` }, [
    el("p", { class: "panel-title", text: isCorrection ? "Suggest a better answer (markdown)" : "Comment" }),
    area,
    el("div", { class: "panel-actions" }, [
      el("span", { class: "keys-hint", text: "Ctrl+Enter stores it · Esc closes" }),
      el("button", { type: "button", class: "small-btn", text: "Cancel", onclick: () => panel.remove() }),
      el("button", {
        type: "button", class: "primary-btn", text: "Save",
        onclick: async () => {
          const text = area.value.trim();
          if (!text) return toast(isCorrection ? "Write the better answer first." : "Write a comment first.");
          try {
            const body = isCorrection ? { key, correction: area.value.replace(/\s+$/, "") } : { key, comment: text };
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
  saveOnCtrlEnter(area, panel.querySelector(".primary-btn"));
  area.focus();
  if (isCorrection) area.setSelectionRange(0, 0);
}
