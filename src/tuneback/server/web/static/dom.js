// The pages' small DOM kit: elements, icons, a toast, copying, decorating rendered answers.

export const $ = (selector, root = document) => root.querySelector(selector);

export const FACES = ["😞", "🙁", "😐", "🙂", "😀"];
const ICONS = {
  up: '<path d="M7 10v11M7 10l4-7a2 2 0 0 1 3 2l-1 5h6a2 2 0 0 1 2 2.3l-1.4 7A2 2 0 0 1 17.6 21H7"/><path d="M3 10h4v11H3z"/>',
  down: '<path d="M17 14V3M17 14l-4 7a2 2 0 0 1-3-2l1-5H5a2 2 0 0 1-2-2.3l1.4-7A2 2 0 0 1 6.4 3H17"/><path d="M21 14h-4V3h4z"/>',
  comment: '<path d="M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z"/>',
  edit: '<path d="M4 20h4L19 9l-4-4L4 16v4z"/><path d="M14 6l4 4"/>',
  copy: '<rect x="8" y="8" width="12" height="12" rx="2"/><path d="M16 8V6a2 2 0 0 0-2-2H6a2 2 0 0 0-2 2v8a2 2 0 0 0 2 2h2"/>',
  check: '<path d="M5 12l5 5L20 7"/>',
  regenerate: '<path d="M20 11a8 8 0 1 0-2.3 5.7"/><path d="M20 4v7h-7"/>',
  pencil: '<path d="M4 20h4L19 9l-4-4L4 16v4z"/>',
  trash: '<path d="M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3"/>',
  compare: '<rect x="3" y="4" width="18" height="16" rx="2"/><path d="M12 4v16"/>',
};
const MOUTHS = ["M8 17q4-4.5 8 0", "M8.5 16.5q3.5-2.2 7 0", "M8.5 15.5h7", "M8.5 14.5q3.5 2.2 7 0", "M8 14q4 4.5 8 0"];
export const faceIcon = (index) => `<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="9"/><path d="M9 9.5v.5M15 9.5v.5"/><path d="${MOUTHS[index]}"/></svg>`;
export const icon = (name) => `<svg viewBox="0 0 24 24" aria-hidden="true">${ICONS[name]}</svg>`;

export function el(tag, attrs = {}, children = []) {
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

export function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), 4500);
}

export function timeOf(iso) {
  if (!iso) return null;
  const when = new Date(iso);
  return el("time", {
    class: "msg-time", datetime: iso, title: when.toLocaleString(),
    text: when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
  });
}

export async function writeClipboard(text) {
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
}

// Code blocks get a copy button; tables a box that scrolls sideways.
export function decorate(body) {
  body.querySelectorAll("pre").forEach((pre) => {
    if (pre.parentElement.classList.contains("code-block")) return;
    const block = el("div", { class: "code-block" });
    pre.replaceWith(block);
    block.append(pre, el("button", {
      type: "button", class: "copy-code", text: "Copy", "aria-label": "Copy code",
      onclick: async (event) => {
        const button = event.currentTarget;
        await writeClipboard(pre.innerText);
        button.textContent = "Copied";
        setTimeout(() => (button.textContent = "Copy"), 1500);
      },
    }));
  });
  body.querySelectorAll("table").forEach((table) => {
    if (table.parentElement.classList.contains("table-scroll")) return;
    const box = el("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": "Table" });
    table.replaceWith(box);
    box.append(table);
  });
}

// Ctrl+Enter (Cmd+Enter on a Mac) does what the box's main button does.
export function saveOnCtrlEnter(area, button) {
  area.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.isComposing) {
      event.preventDefault();
      button.click();
    }
  });
}

export function errorBox(text, onRetry) {
  const box = el("div", { class: "error-box", role: "alert" }, [el("span", { class: "error-text", text })]);
  if (onRetry) box.append(el("button", { type: "button", class: "retry-btn", text: "Retry", onclick: onRetry }));
  return box;
}
