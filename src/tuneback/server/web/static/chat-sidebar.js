// The chat's conversation list: search results, and rename and delete on each item.

import { api } from "./http.js";
import { $, el, icon, toast } from "./dom.js";

// Which conversation is open (set by the page): its item is marked, and deleting it leaves it.
let openConversation = () => null;

export function followOpenConversation(current) {
  openConversation = current;
}

function isOpen(item) {
  const open = openConversation();
  return Boolean(open) && item.id === open.id;
}

export async function refreshSidebar(query = "") {
  try {
    const items = await api("GET", `/ui/conversations${query ? `?q=${encodeURIComponent(query)}` : ""}`);
    const list = $("#conversation-list");
    list.replaceChildren(...(items.length ? items.map(sidebarItem) : [el("p", { class: "sidebar-empty", text: query ? "Nothing matches." : "No conversations yet. Ask something to start one." })]));
  } catch (error) { toast(error.message); }
}

// A conversation in the sidebar, with rename and delete.
function sidebarItem(item) {
  const active = isOpen(item);
  const row = el("div", { class: "conversation-item", "data-id": item.id });
  const link = el("a", {
    href: `/c/${item.id}`, title: item.title, text: item.title,
    class: `conversation-link${active ? " active" : ""}`, "aria-current": active ? "page" : null,
  });
  const actions = el("span", { class: "conversation-actions" }, [
    el("button", {
      type: "button", class: "act", "aria-label": "Rename conversation", title: "Rename",
      html: icon("pencil"), onclick: () => renameItem(row, item),
    }),
    el("button", {
      type: "button", class: "act", "aria-label": "Delete conversation", title: "Delete",
      html: icon("trash"), onclick: () => confirmDelete(row, item),
    }),
  ]);
  row.append(link, actions);
  return row;
}

function renameItem(row, item) {
  const input = el("input", { type: "text", value: item.title, maxlength: "200", "aria-label": "Conversation title" });
  const cancel = () => row.replaceWith(sidebarItem(item));
  const save = async () => {
    const title = input.value.trim();
    if (!title || title === item.title) return cancel();
    try {
      const renamed = await api("POST", `/ui/conversations/${item.id}/rename`, { title });
      item.title = renamed.title;
      if (isOpen(item)) document.title = `${renamed.title} · tuneback`;
      row.replaceWith(sidebarItem(item));
    } catch (error) { toast(error.message); }
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.isComposing) { event.preventDefault(); save(); }
    if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); cancel(); }
  });
  row.classList.add("editing");
  row.replaceChildren(input, el("div", { class: "row-actions" }, [
    el("button", { type: "button", class: "small-btn", text: "Cancel", onclick: cancel }),
    el("button", { type: "button", class: "primary-btn", text: "Save", onclick: save }),
  ]));
  input.focus();
  input.select();
}

function confirmDelete(row, item) {
  const cancel = () => row.replaceWith(sidebarItem(item));
  row.classList.add("confirming");
  row.replaceChildren(
    el("p", { class: "confirm-text", text: `Delete “${item.title}”? It leaves your list for good.` }),
    el("div", { class: "row-actions" }, [
      el("button", { type: "button", class: "small-btn", text: "Cancel", onclick: cancel }),
      el("button", {
        type: "button", class: "danger-btn", text: "Delete",
        onclick: async () => {
          try {
            await api("DELETE", `/ui/conversations/${item.id}`);
            if (isOpen(item)) { window.location.href = "/"; return; }
            row.remove();
            if (!$("#conversation-list .conversation-item")) refreshSidebar();
          } catch (error) { toast(error.message); }
        },
      }),
    ]),
  );
  row.querySelector(".small-btn").focus();
}

// The server draws the list as plain links; each becomes an item with its actions.
export function adoptSidebar() {
  const links = [...document.querySelectorAll("#conversation-list > a.conversation-link")];
  if (!links.length) return;
  $("#conversation-list").replaceChildren(...links.map((link) => sidebarItem({
    id: link.getAttribute("href").replace("/c/", ""), title: link.getAttribute("title"),
  })));
}
