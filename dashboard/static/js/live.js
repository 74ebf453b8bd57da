// Server-sent events over fetch (EventSource cannot send an Authorization header): parses
// `event:`/`data:` blocks and hands each to `onEvent(name, data)`; `follow` reconnects a live
// view after an error or a dropped connection, with a growing pause.

import { ApiError, headers } from "./api.js";

/** Reads an SSE response body, calling `onEvent(name, data)` per event. */
export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) await onEvent(name, data.join("\n"));
    }
  }
}

/**
 * Follows a live view (`GET path`, SSE `snapshot` events): `onSnapshot(json)` for each,
 * `onStatus(text)` for the connection's state. Returns a function that stops it.
 */
export function follow(path, auth, onSnapshot, onStatus) {
  const controller = new AbortController();
  let pause = 1000;
  (async () => {
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(path, { headers: headers(auth), signal: controller.signal, credentials: "omit" });
        if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
        onStatus("live");
        pause = 1000;
        await readEvents(response, async (name, data) => {
          if (name === "snapshot") onSnapshot(JSON.parse(data));
          if (name === "error") throw new ApiError(500, JSON.parse(data));
        });
      } catch (error) {
        if (controller.signal.aborted) return;
        onStatus(`reconnecting: ${error.message}`);
        if (error instanceof ApiError && (error.status === 401 || error.status === 404)) return;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 15000);
    }
  })();
  return () => controller.abort();
}
