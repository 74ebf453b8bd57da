// The requester's jobs (GET /v1/jobs): submit one (submit.js), pick one to watch its slices and attempts and follow
// its logs live (GET /v1/jobs/{id}/logs?follow=true, SSE), fetch its results (each output
// checked against its sha256 before it is offered) or cancel it.

import { ApiError, call, get, headers } from "./api.js";
import { readEvents } from "./live.js";
import { sha256Hex } from "./bytes.js";
import { initSubmit } from "./submit.js";
import { $, el, fill, header, say, usd } from "./ui.js";

let following = null;

if (header("apiKey")) {
  refresh();
  $("#refresh").addEventListener("click", refresh);
  $("#cancel").addEventListener("click", cancel);
  initSubmit((job) => {
    refresh();
    watch(job.id);
  });
  const wanted = new URLSearchParams(location.search).get("job");
  if (wanted) watch(wanted);
}

async function refresh() {
  try {
    const list = await get("/v1/jobs");
    const rows = list.data.map((job) => {
      const open = el("button", { type: "button", class: "quiet" }, "Watch");
      open.addEventListener("click", () => watch(job.id));
      return el(
        "tr",
        { "data-job-id": job.id },
        el("td", {}, el("code", {}, job.id)),
        el("td", {}, job.class),
        el("td", {}, job.state),
        el("td", { class: "num" }, `${job.slices_done}/${job.slice_count}`),
        el("td", { class: "num" }, usd(job.escrow_micros)),
        el("td", { class: "num" }, usd(job.charged_micros)),
        el("td", {}, job.created_at),
        el("td", {}, open),
      );
    });
    fill($("#jobs tbody"), rows.length ? rows : el("tr", {}, el("td", { colspan: 8 }, "No job yet.")));
  } catch (error) {
    say(error.message, true);
  }
}

function renderJob(job) {
  fill($("#job-state"), job.state);
  $("#cancel").disabled = ["done", "failed", "cancelled"].includes(job.state);
  const rows = (job.slices ?? []).map((slice) =>
    el(
      "tr",
      {},
      el("td", { class: "num" }, slice.index),
      el("td", {}, slice.state),
      el("td", {}, el("ul", {}, slice.attempts.map((a) => el("li", {}, el("code", {}, a.node_id.slice(0, 8)), ` ${a.state}`, a.fuel != null ? `, ${a.fuel} fuel` : "", `, ${usd(a.charged_micros)}`, a.error ? ` (${a.error})` : "")))),
    ),
  );
  fill($("#slices tbody"), rows);
  if (job.state === "done") results(job.id);
}

async function watch(id) {
  following?.abort();
  following = new AbortController();
  $("#job").hidden = false;
  fill($("#job-id"), id);
  fill($("#job-state"));
  fill($("#logs"));
  fill($("#results"));
  try {
    renderJob(await get(`/v1/jobs/${encodeURIComponent(id)}`));
    const response = await fetch(`/v1/jobs/${encodeURIComponent(id)}/logs?follow=true`, {
      headers: headers("key"),
      signal: following.signal,
      credentials: "omit",
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    await readEvents(response, async (name, data) => {
      if (name === "log") {
        const log = JSON.parse(data);
        $("#logs").append(`[slice ${log.slice} attempt ${log.attempt} ${log.stream}] ${log.text}\n`);
      } else if (name === "state") {
        renderJob({ ...JSON.parse(data), slices: undefined });
        renderJob(await get(`/v1/jobs/${encodeURIComponent(id)}`));
      } else if (name === "done") {
        renderJob(await get(`/v1/jobs/${encodeURIComponent(id)}`));
        refresh();
      }
    });
  } catch (error) {
    if (error.name !== "AbortError") say(error.message, true);
  }
}

async function results(id) {
  if ($("#results").childElementCount) return;
  const result = await get(`/v1/jobs/${encodeURIComponent(id)}/result`);
  const items = result.slices.flatMap((slice) =>
    slice.outputs.map((output) => {
      const button = el("button", { type: "button", class: "quiet" }, `Download slice ${slice.index}/${output.path} (${output.size} bytes)`);
      button.addEventListener("click", () => download(output));
      return el("li", {}, button, " ", el("code", {}, output.sha256));
    }),
  );
  fill($("#results"), items);
}

async function download(output) {
  const response = await fetch(`/v1/blobs/${output.sha256}`, { headers: headers("key"), credentials: "omit" });
  if (!response.ok) return say(`The grid refused the blob: HTTP ${response.status}`, true);
  const bytes = new Uint8Array(await response.arrayBuffer());
  if ((await sha256Hex(bytes)) !== output.sha256) return say(`${output.path} does not hash to its name: refused`, true);
  const link = el("a", { href: URL.createObjectURL(new Blob([bytes])), download: output.path.split("/").pop() });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  say(`${output.path}: sha256 checked.`);
}

async function cancel() {
  const id = $("#job-id").textContent;
  if (!confirm(`Cancel job ${id}? What is not done yet is refunded.`)) return;
  try {
    renderJob(await call("DELETE", `/v1/jobs/${encodeURIComponent(id)}`));
    say(`Job ${id} cancelled.`);
    refresh();
  } catch (error) {
    say(error.message, true);
  }
}
