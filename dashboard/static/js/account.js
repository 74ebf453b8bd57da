// The caller's account: the key's balance, 30 days of usage per day (chart) and per key and
// model (table), and the account's keys (create, label, revoke, move credits). Live from
// GET /v1/account/events; every change goes through the same API the CLI uses.

import { call, get, post } from "./api.js";
import { legend, stackedBars } from "./chart.js";
import { follow } from "./live.js";
import { $, el, fill, header, say, usd } from "./ui.js";
import * as wallet from "./wallet.js";

if (header("apiKey")) {
  follow("/v1/account/events", "key", render, (state) => fill($("#live"), state));
  $("#create-key").addEventListener("submit", createKey);
  $("#move-credits").addEventListener("submit", moveCredits);
  $("#topup").addEventListener("submit", topup);
  if (!wallet.present()) {
    fill($("#topup-note"), "No browser wallet was found (no window.ethereum): a top-up cannot be paid from this page. Pay one with any x402 client (POST /compute/credits/topup), or ask the grid's operator for credits.");
    $("#topup button").disabled = true;
  }
}

let keys = [];

function render(snapshot) {
  keys = snapshot.keys.data;
  fill($("#balance"), usd(snapshot.balance.balance_micros));
  const rows = snapshot.usage.data;
  fill($("#spent"), usd(rows.reduce((n, r) => n + r.billed_micros, 0)));
  fill($("#tokens"), rows.reduce((n, r) => n + r.prompt_tokens + r.completion_tokens, 0).toLocaleString("en-US"));
  renderUsage(snapshot.usage);
  renderKeys(snapshot.balance.api_key_id);
}

function renderUsage(usage) {
  const first = Date.parse(`${usage.since}T00:00:00Z`);
  const days = Array.from({ length: usage.days }, (_, i) => new Date(first + i * 86400000).toISOString().slice(0, 10));
  const models = [...new Set(usage.data.map((r) => r.model))];
  const series = models.map((model) => ({
    name: model,
    values: days.map((day) => usage.data.filter((r) => r.day === day && r.model === model).reduce((n, r) => n + r.billed_micros, 0)),
  }));
  fill($("#usage-chart"), stackedBars("Spent per day and model, last 30 days", days, series, usd), legend(series));
  const totals = new Map();
  for (const r of usage.data) {
    const key = `${r.api_key_id} ${r.model}`;
    const t = totals.get(key) ?? { key: r.api_key_id, model: r.model, jobs: 0, prompt: 0, completion: 0, billed: 0 };
    Object.assign(t, { jobs: t.jobs + r.jobs, prompt: t.prompt + r.prompt_tokens, completion: t.completion + r.completion_tokens, billed: t.billed + r.billed_micros });
    totals.set(key, t);
  }
  const body = [...totals.values()].map((t) =>
    el("tr", {}, el("td", {}, keyName(t.key)), el("td", {}, t.model), el("td", { class: "num" }, t.jobs), el("td", { class: "num" }, t.prompt), el("td", { class: "num" }, t.completion), el("td", { class: "num usage-billed" }, usd(t.billed))),
  );
  fill($("#usage-table tbody"), body.length ? body : el("tr", {}, el("td", { colspan: 6 }, "No chat in the last 30 days.")));
}

function keyName(id) {
  const key = keys.find((k) => k.id === id);
  return key ? `${key.label || key.prefix} (#${id})` : `#${id}`;
}

/** Revoked, expired, or live (with when a wallet sign-in's key expires). */
function keyState(key) {
  const expired = key.expires_at && Date.parse(key.expires_at) <= Date.now();
  if (key.revoked || expired) return el("td", { class: "state-bad" }, key.revoked ? "revoked" : "expired");
  return el("td", { class: "state-ok" }, "live", key.expires_at ? el("span", { class: "hint" }, ` (expires ${key.expires_at.slice(0, 16).replace("T", " ")} UTC)`) : null);
}

function renderKeys(currentId) {
  const rows = keys.map((key) => {
    const label = el("input", { type: "text", value: key.label, maxlength: 100, "aria-label": `Label of key ${key.id}` });
    const save = el("button", { type: "button", class: "quiet" }, "Save label");
    save.addEventListener("click", () => relabel(key.id, label.value));
    const revoke = el("button", { type: "button", class: "danger", disabled: key.revoked || key.id === currentId }, "Revoke");
    revoke.addEventListener("click", () => revokeKey(key));
    return el(
      "tr",
      { "data-key-id": key.id },
      el("td", {}, key.id),
      el("td", {}, el("code", {}, `${key.prefix}…`), key.id === currentId ? el("span", { class: "badge" }, "this key") : null),
      el("td", {}, label, save),
      el("td", { class: "num" }, usd(key.credits_micros)),
      el("td", {}, key.created_at.slice(0, 10)),
      keyState(key),
      el("td", {}, revoke),
    );
  });
  fill($("#keys tbody"), rows);
  const live = keys.filter((k) => !k.revoked);
  for (const select of [$("#move-from"), $("#move-to")]) {
    const chosen = select.value;
    fill(select, live.map((k) => el("option", { value: k.id, selected: String(k.id) === chosen }, `${k.label || k.prefix} (#${k.id}, ${usd(k.credits_micros)})`)));
  }
}

async function act(what, run) {
  try {
    await run();
    if (what) say(what);
  } catch (error) {
    say(error.message, true);
  }
}

function createKey(event) {
  event.preventDefault();
  const label = $("#new-label").value.trim();
  const credits = Number($("#new-credits").value || 0);
  act("Key created. Copy it now: it is not shown again.", async () => {
    const created = await post("/v1/keys", { label: label || undefined, credits_usd: credits > 0 ? credits : undefined });
    const shown = $("#new-key");
    fill(shown, "New key: ", el("code", {}, created.api_key));
    shown.hidden = false;
    $("#create-key").reset();
  });
}

function relabel(id, label) {
  act(`Key ${id} relabelled.`, () => call("PATCH", `/v1/keys/${id}`, { body: { label } }));
}

function revokeKey(key) {
  if (!confirm(`Revoke key ${key.label || key.prefix} (#${key.id})? It stops working at once.`)) return;
  act(`Key ${key.id} revoked.`, () => call("DELETE", `/v1/keys/${key.id}`));
}

function moveCredits(event) {
  event.preventDefault();
  const body = { from_key_id: Number($("#move-from").value), to_key_id: Number($("#move-to").value), amount_usd: Number($("#move-amount").value) };
  act("Credits moved.", () => post("/v1/keys/transfer", body));
}

function topup(event) {
  event.preventDefault();
  const amount = Number($("#topup-amount").value);
  act("", async () => {
    say("Waiting for the wallet's signature…");
    const paid = await wallet.topUp(amount);
    say(`Paid by ${paid.payer}: ${usd(paid.credited_micros)} credited, this key now holds ${usd(paid.balance_micros)}.`);
  });
}

// The balance alone, for the first paint before the live view connects.
get("/compute/credits/balance").then((b) => fill($("#balance"), usd(b.balance_micros))).catch(() => {});
