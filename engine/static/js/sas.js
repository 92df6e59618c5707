"use strict";
// Shared by the supervisors' dashboard and the desks' telephony bar: escaping text for HTML,
// durations as a room reads them, and reading a stream of server-sent events.
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const duration = (s) => s === null || s === undefined ? "–" : s < 60 ? Math.round(s) + " s"
  : Math.floor(s / 60) + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";

// Calls onData with each event's data until the stream ends (the caller then reconnects).
async function readEvents(response, onData) {
  const reader = response.body.getReader(); const decoder = new TextDecoder(); let buffer = "";
  while (true) {
    const {value, done} = await reader.read(); if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data) onData(data);
    }
  }
}
