// The playground: reserve a node, check its keybind, seal the prompt to it here, stream the
// answer and verify every chunk's signature before showing its text (./seal.js). Nothing is
// shown that did not verify; a failed check ends the answer with the reason.

import { ApiError, get, headers, post } from "./api.js";
import { readEvents } from "./live.js";
import { StreamVerifier, openSealedReply, randomBytes, sealRequest, verifyReservation } from "./seal.js";
import { encode as b58encode } from "./base58.js";
import { $, el, fill, header, say } from "./ui.js";

if (header("apiKey")) {
  get("/v1/models", { auth: "none" })
    .then((list) => fill($("#model"), list.data.map((m) => el("option", { value: m.id }, m.id))))
    .catch((error) => say(`No models: ${error.message}`, true));
  $("#chat").addEventListener("submit", send);
}

function badge(ok, text) {
  const badge = $("#verified");
  badge.hidden = false;
  badge.className = ok ? "badge verified" : "badge refused";
  fill(badge, text);
}

function proof(entries) {
  fill($("#proof"), entries.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, el("code", {}, value))]));
}

async function send(event) {
  event.preventDefault();
  const button = $("#send");
  button.disabled = true;
  fill($("#answer"));
  fill($("#proof"));
  $("#verified").hidden = true;
  try {
    await converse($("#model").value, $("#prompt").value, Number($("#max-tokens").value || 64));
  } catch (error) {
    badge(false, "not verified");
    say(error instanceof ApiError ? `The grid refused: ${error.message}` : `Refused: ${error.message}`, true);
  } finally {
    button.disabled = false;
  }
}

async function converse(model, prompt, maxTokens) {
  say("Reserving a node…");
  const node = await verifyReservation(await post("/v1/reserve", { model }));
  const nonce = b58encode(randomBytes(16));
  const inference = { messages: [{ role: "user", content: prompt }], max_tokens: maxTokens, stream: true, nonce };
  const { enc, response } = await sealRequest(node.encryptionKey, new TextEncoder().encode(JSON.stringify(inference)));
  say(`Sealed to node ${node.nodeId}; waiting for its answer…`);
  const answer = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: { ...headers("key", true), Accept: "text/event-stream" },
    body: JSON.stringify({ reservation_token: node.reservationToken, max_tokens: maxTokens, enc, stream: true }),
    credentials: "omit",
  });
  if (!answer.ok) throw new ApiError(answer.status, await answer.json().catch(() => null));
  let end = null;
  let chunks = 0;
  if ((answer.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    const verifier = new StreamVerifier(node, response, nonce);
    await readEvents(answer, async (name, data) => {
      if (name === "error") throw new ApiError(502, JSON.parse(data));
      const opened = await verifier.open(JSON.parse(data));
      chunks += 1;
      $("#answer").append(opened.text);
      if (opened.end) end = opened.end;
    });
    if (!end) throw new Error("the stream ended before its final, signed chunk");
  } else {
    const opened = await openSealedReply(node, response, await answer.json());
    $("#answer").append(opened.text);
    chunks = 1;
    end = opened;
  }
  badge(true, "verified");
  proof([
    ["Node", node.nodeId],
    ["Node key (ed25519)", node.identityKey],
    ["Job", end.jobId],
    ["Model sha256", end.modelSha256 ?? "not claimed"],
    ["Signed usage", `${end.usage.prompt_tokens} prompt + ${end.usage.completion_tokens} completion tokens`],
    ["Chunks verified", String(chunks)],
  ]);
  say(`Every chunk verified against node ${node.nodeId}'s key.`);
}
