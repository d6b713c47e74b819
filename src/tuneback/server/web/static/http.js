// The one way pages call the server: JSON in, JSON out, errors as the server words them.
"use strict";

// Every state-changing call carries the page's CSRF token (see server/access.py).
function csrfHeaders(extra = {}) {
  const token = document.querySelector('meta[name="csrf-token"]')?.content;
  return token ? { ...extra, "X-CSRF-Token": token } : extra;
}

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: csrfHeaders(body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error?.message || `request failed (${response.status})`);
  return data;
}
