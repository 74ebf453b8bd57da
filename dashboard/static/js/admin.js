// The grid operator's overview (GET /grid/admin/overview/events, behind the admin token):
// capacity by model, queue depth, jobs per second, latency percentiles, the ledger audit,
// tamper events and slashes, from the same data as /metrics.

import { follow } from "./live.js";
import { $, el, fill, header, sgl } from "./ui.js";

const seconds = (s) => (s == null ? "—" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s} s`);

if (header("adminToken")) {
  follow("/grid/admin/overview/events", "admin", render, (state) => fill($("#live"), state));
}

function render(overview) {
  const { capacity, jobs, latency, ledger } = overview;
  fill($("#queue"), String(capacity.queue_depth));
  fill($("#rate"), jobs.per_second_last_minute.toFixed(2));
  fill($("#jobs-total"), `${jobs.completed_total} completed, ${jobs.failed_total} failed since start`);
  fill($("#latency"), [latency.p50_seconds, latency.p95_seconds, latency.p99_seconds].map(seconds).join(" / "));
  fill($("#latency-count"), `${latency.count} requests`);
  fill($("#ledger"), el("span", { class: ledger.sound ? "state-ok" : "state-bad" }, ledger.sound ? "sound" : "problems"));
  fill($("#ledger-detail"), ledger.sound ? `${ledger.transactions} transactions balance` : ledger.problems.join("; "));
  const models = capacity.models.map((m) =>
    el("tr", { "data-model": m.model }, el("td", {}, m.model), el("td", { class: "num" }, m.nodes), el("td", { class: "num" }, m.slots), el("td", { class: "num" }, m.busy_slots), el("td", { class: "num" }, m.waiting), el("td", { class: m.at_capacity ? "state-bad" : "state-ok" }, m.at_capacity ? "yes" : "no")),
  );
  fill($("#capacity tbody"), models.length ? models : el("tr", {}, el("td", { colspan: 6 }, "No eligible node serves a model.")));
  fill($("#nodes-summary"), `${capacity.active_nodes} of ${capacity.total_nodes} registered nodes heartbeating, ${capacity.available_nodes} with a free slot.`);
  const tamper = overview.tamper_events.map((t) => el("tr", {}, el("td", {}, t.at), el("td", {}, el("code", {}, t.node_id)), el("td", {}, el("code", {}, t.job_id)), el("td", {}, t.reason)));
  fill($("#tamper tbody"), tamper.length ? tamper : el("tr", {}, el("td", { colspan: 4 }, "None.")));
  const slashes = overview.slashes.map((s) => el("tr", {}, el("td", {}, s.at), el("td", {}, el("code", {}, s.wallet)), el("td", {}, s.reason), el("td", { class: "num" }, sgl(s.amount_micros)), el("td", {}, el("code", {}, s.evidence_hash ?? "—"))));
  fill($("#admin-slashes tbody"), slashes.length ? slashes : el("tr", {}, el("td", { colspan: 5 }, "None.")));
}
