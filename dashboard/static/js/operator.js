// An operator's wallet: stake, unbonding, unpaid earnings, slashes with their evidence hash,
// and each node with why the scheduler gives it no work (GET /grid/operators/{wallet}/events:
// the reasons are the scheduler's own, computed by the grid).

import { stackedBars } from "./chart.js";
import { follow } from "./live.js";
import * as session from "./session.js";
import { $, el, fill, header, sgl, usd } from "./ui.js";

const ADVICE = {
  offline: "the grid has not heard from it recently: is `sgl start` running?",
  off_grid: "in maintenance: `sgl on-grid` brings it back",
  not_attested: "it has not passed attestation: run `sgl attest`",
  binary_changed: "it runs another binary than the one attested: run `sgl attest` again",
  binary_not_allowed: "its binary is not on the grid's allowlist: `sgl update` installs one",
  below_stake: "the wallet's stake is below the grid's minimum",
  unstaking: "the wallet is unstaking: no work during the cooldown",
  not_bonded: "the wallet has no bond in the registry: `sgl stake deposit --bond`",
  no_model: "it serves no model now (engine unhealthy or not loaded)",
};

let stop = null;

if (header(null)) {
  const wallet = new URLSearchParams(location.search).get("wallet") || session.get("wallet");
  $("#wallet").value = wallet;
  $("#wallet-form").addEventListener("submit", (event) => {
    event.preventDefault();
    show($("#wallet").value.trim());
  });
  if (wallet) show(wallet);
}

function show(wallet) {
  session.set("wallet", wallet);
  stop?.();
  stop = follow(`/grid/operators/${encodeURIComponent(wallet)}/events`, "none", render, (state) => fill($("#live"), state));
}

/** The scheduler's ranking of an eligible node for one model, and what it means. */
function standing(s) {
  const price = (p) => `$${p.toFixed(2)}/M tokens`;
  const notes = [`${s.model}: ranked ${s.position} of ${s.of}`];
  if (s.position > 1) notes.push("the nodes before it are cheaper, more reputable or less loaded, so it gets work when they are busy");
  if (s.above_reference) notes.push(`its price ${price(s.price_per_m)} is above the grid's reference ${price(s.reference_per_m)}: requests paid per request, quoted at the reference, skip it`);
  if (s.prompts_too_long_24h > 0) notes.push(`context too small: ${s.prompts_too_long_24h} request(s) in the last 24 h had prompts longer than its ${s.context_size}-token context and went to nodes with more`);
  return el("li", { "data-standing": s.model }, notes.join("; "));
}

function renderEarnings(earnings) {
  const first = Date.parse(`${earnings.since}T00:00:00Z`);
  const days = Array.from({ length: earnings.days }, (_, i) => new Date(first + i * 86400000).toISOString().slice(0, 10));
  const values = days.map((day) => earnings.data.find((d) => d.day === day)?.earned_micros ?? 0);
  const total = values.reduce((n, v) => n + v, 0);
  fill($("#earnings-chart"), stackedBars("Earnings per day, last 30 days", days, [{ name: "earned", values }], usd), el("p", { "data-earned": total }, `${usd(total)} earned in 30 days.`));
}

function render({ stake, nodes, earnings }) {
  renderEarnings(earnings);
  fill($("#stake"), sgl(stake.staked_micros));
  fill($("#stake-state"), `${stake.state.replaceAll("_", " ")} (minimum ${stake.min_stake_sgl.toLocaleString("en-US")} SGL)`);
  fill($("#unbonding"), sgl(stake.unbonding_micros));
  fill($("#unbonding-at"), stake.unbonding_available_at ? `withdrawable ${stake.withdrawable ? "now" : `from ${stake.unbonding_available_at}`}` : "");
  fill($("#earnings"), usd(stake.earnings_micros));
  const rows = nodes.nodes.map((node) =>
    el(
      "tr",
      { "data-node-id": node.node_id },
      el("td", {}, el("code", {}, node.node_id)),
      el("td", { class: node.status === "active" ? "state-ok" : "state-bad" }, node.status.replaceAll("_", " ")),
      el("td", {}, node.models.join(", ") || "—"),
      el("td", { class: "num" }, node.slots ? `${node.busy_slots}/${node.slots}` : "—"),
      el("td", { class: "num" }, node.reputation.toFixed(2)),
      el("td", { class: node.attested ? "state-ok" : "state-bad" }, node.attested ? "yes" : "no"),
      el("td", { class: node.binary_allowed ? "state-ok" : "state-bad" }, node.binary_allowed ? "yes" : "no"),
      el("td", { class: "num" }, `${node.jobs_completed} done, ${node.jobs_failed} failed`),
      el(
        "td",
        { class: "why" },
        node.not_serving.length
          ? el("ul", {}, node.not_serving.map((reason) => el("li", { "data-reason": reason }, el("strong", {}, reason.replaceAll("_", " ")), `: ${ADVICE[reason] ?? "a reason this page does not know"}`)))
          : [el("span", { class: "state-ok" }, "gets work"), el("ul", {}, node.standing.map(standing))],
      ),
    ),
  );
  fill($("#nodes tbody"), rows.length ? rows : el("tr", {}, el("td", { colspan: 9 }, "No node is registered under this wallet.")));
  const slashes = stake.slashes.map((s) =>
    el("tr", {}, el("td", {}, s.at), el("td", {}, s.reason), el("td", { class: "num" }, sgl(s.amount_micros)), el("td", {}, el("code", {}, s.node_id ?? "—")), el("td", {}, el("code", {}, s.job_id ?? "—")), el("td", {}, el("code", {}, s.evidence_hash ?? "—"))),
  );
  fill($("#slashes tbody"), slashes.length ? slashes : el("tr", {}, el("td", { colspan: 6 }, "No slash.")));
}
