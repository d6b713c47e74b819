// The one way pages call the server: JSON in, JSON out, errors as the server words them.

// Every state-changing call carries the page's CSRF token (see server/access.py).
export function csrfHeaders(extra = {}) {
  const token = document.querySelector('meta[name="csrf-token"]')?.content;
  return token ? { ...extra, "X-CSRF-Token": token } : extra;
}

export async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: csrfHeaders(body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error?.message || `request failed (${response.status})`);
  return data;
}

// The server-sent events of a streamed answer, as {event, data} once each is whole.
export async function* readEvents(response) {
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
      const payload = /^data: (.*)$/m.exec(block)?.[1];
      if (event && payload) yield { event, data: JSON.parse(payload) };
    }
  }
}
