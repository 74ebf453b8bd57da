// Rented machines: plans and regions (public), provision with credits, and the account's
// machines live (GET /compute/instances/events, SSE) with their SSH command, a countdown to
// expiry, extend, resize and destroy, through the same routes `sgl-cloud machines` uses.

import { call, get, post } from "./api.js";
import { follow } from "./live.js";
import { $, el, fill, header, say, usd } from "./ui.js";

let plans = [];
let machines = [];

if (header("apiKey")) {
  load();
  $("#provision").addEventListener("submit", provision);
  $("#plan").addEventListener("change", quote);
  $("#hours").addEventListener("input", quote);
  follow("/compute/instances/events", "key", (list) => {
    machines = list.instances;
    render();
  }, (state) => fill($("#live"), state));
  setInterval(countdown, 1000);
}

async function load() {
  try {
    plans = (await get("/compute/plans", { auth: "none" })).plans;
    const regions = (await get("/compute/regions", { auth: "none" })).regions;
    fill($("#plan"), plans.map((p) => el("option", { value: p.id }, `${p.id}: ${p.vcpus} vCPU, ${p.memory_mb} MB, ${usd(p.hourly_micros)}/h`)));
    const place = (r) => [r.city, r.country].filter(Boolean).join(", ");
    fill($("#region"), regions.map((r) => el("option", { value: r.id }, place(r) ? `${r.id} (${place(r)})` : r.id)));
    if (!plans.length) say("This grid sells no machines.");
    quote();
  } catch (error) {
    say(error.message, true);
  }
}

function quote() {
  const plan = plans.find((p) => p.id === $("#plan").value);
  const hours = Number($("#hours").value || 0);
  fill($("#quote"), plan && hours > 0 ? `Prepaid: ${usd(plan.hourly_micros * hours)} for ${hours} h, charged when the machine first answers SSH; refunded in full if it never does.` : "");
}

function left(machine) {
  if (!machine.expires_at_ms) return "—";
  const secs = Math.max(0, Math.floor((machine.expires_at_ms - Date.now()) / 1000));
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  return `${h} h ${String(m).padStart(2, "0")} min ${String(secs % 60).padStart(2, "0")} s`;
}

function countdown() {
  for (const cell of document.querySelectorAll("td[data-expires]")) {
    const machine = machines.find((m) => m.id === cell.dataset.expires);
    if (machine) fill(cell, left(machine));
  }
}

function render() {
  const rows = machines.map((m) => {
    const ended = ["destroyed", "failed"].includes(m.state);
    const extend = el("button", { type: "button", class: "quiet", disabled: ended }, "Extend 1 h");
    extend.addEventListener("click", () => act(`Extended ${m.id}.`, () => post(`/compute/instances/${m.id}/extend`, { extend_hours: 1 })));
    const resize = el("select", { "aria-label": `New plan for ${m.id}`, disabled: ended }, plans.map((p) => el("option", { value: p.id, selected: p.id === m.plan }, p.id)));
    const doResize = el("button", { type: "button", class: "quiet", disabled: ended }, "Resize");
    doResize.addEventListener("click", () => act(`Resized ${m.id}.`, () => post(`/compute/instances/${m.id}/resize`, { plan: resize.value })));
    const destroy = el("button", { type: "button", class: "danger", disabled: ended }, "Destroy");
    destroy.addEventListener("click", () => {
      if (confirm(`Destroy ${m.label || m.id}? Its disk is gone for good.`)) act(`Destroyed ${m.id}.`, () => call("DELETE", `/compute/instances/${m.id}`));
    });
    return el(
      "tr",
      { "data-machine-id": m.id },
      el("td", {}, m.label || "", " ", el("code", {}, m.id)),
      el("td", {}, m.plan, " ", el("span", { class: "hint" }, m.region)),
      el("td", {}, m.state),
      el("td", { "data-expires": m.id }, left(m)),
      el("td", {}, m.ssh_command ? el("code", {}, m.ssh_command) : "—"),
      el("td", { class: "num" }, usd(m.paid_micros)),
      el("td", {}, extend, resize, doResize, destroy),
    );
  });
  fill($("#machines tbody"), rows.length ? rows : el("tr", {}, el("td", { colspan: 7 }, "No machine yet.")));
}

async function act(what, run) {
  try {
    await run();
    say(what);
  } catch (error) {
    say(error.message, true);
  }
}

function provision(event) {
  event.preventDefault();
  const body = { plan: $("#plan").value, region: $("#region").value, prepaid_hours: Number($("#hours").value) };
  const label = $("#machine-label").value.trim();
  const key = $("#ssh-key").value.trim();
  if (label) body.label = label;
  if (key) body.ssh_public_key = key;
  act("Provisioning: the machine appears below and starts counting once it answers SSH.", () => post("/compute/provision", body));
}
