// The one way pages call the server: JSON in, JSON out, errors as the server words them.
"use strict";

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error?.message || `request failed (${response.status})`);
  return data;
}
