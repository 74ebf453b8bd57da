// The jobs page's "Submit a job" card: a bundle folder, or a class's form, planned by plans.js
// and hashed, signed by this browser's requester key and submitted by bundle.js; then the page
// watches the new job.

import * as bundle from "./bundle.js";
import * as plans from "./plans.js";
import { $, fill, say } from "./ui.js";

/** Wires the card; `submitted(job)` is called with each job the grid accepted. */
export function initSubmit(submitted) {
  const kind = $("#kind");
  const show = () => {
    for (const set of document.querySelectorAll("#submit-form fieldset")) {
      set.hidden = !set.dataset.kind.split(" ").includes(kind.value);
    }
  };
  kind.addEventListener("change", show);
  show();
  const key = bundle.requesterKey();
  key.then((made) => fill($("#requester"), made.requester)).catch((error) => say(`no requester key: ${error.message}`, true));
  $("#submit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $("#submit");
    button.disabled = true;
    fill($("#submitted"));
    try {
      const job = await send(kind.value, key);
      fill($("#submitted"), `Job ${job.id} submitted: ${job.slice_count} slice(s) × ${job.redundancy}.`);
      submitted(job);
    } catch (error) {
      const field = error.field ? document.querySelector(`fieldset:not([hidden]) [name="${error.field}"]`) : null;
      field?.focus();
      say(error.message, true);
    } finally {
      button.disabled = false;
    }
  });
}

/** The visible fields' values by name. */
function values() {
  const out = {};
  for (const input of document.querySelectorAll("#submit-form fieldset:not([hidden]) input[name]")) {
    if (input.type !== "file") out[input.name] = input.value.trim();
  }
  return out;
}

async function bytesOf(file) {
  return new Uint8Array(await file.arrayBuffer());
}

/** A folder input's files by path inside the folder (its own name dropped). */
async function folder(input) {
  const files = new Map();
  for (const file of input.files) {
    const path = (file.webkitRelativePath || file.name).split("/").slice(1).join("/") || file.name;
    files.set(path, await bytesOf(file));
  }
  if (!files.size) throw new plans.PlanError(input.name, "choose a folder");
  return files;
}

async function oneFile(input) {
  const file = input.files[0];
  return file ? { name: file.name, bytes: await bytesOf(file) } : null;
}

async function plan(kind) {
  const form = values();
  if (kind === "bundle") return plans.directory(await folder($("#bundle-files")));
  if (kind === "train") {
    const data = await oneFile($("#train-data"));
    const module = new Uint8Array(await (await fetch("/dashboard/wasm/mnist-train.wasm")).arrayBuffer());
    return plans.train(form, data?.bytes, module);
  }
  if (kind === "image") return plans.image(form, form.entry, await folder($("#image-files")));
  const scene = await oneFile($("#render-scene"));
  return plans.render(form, scene?.name, scene?.bytes);
}

/** Plans, signs (with `key`, a promise of the requester key, unless the folder is signed) and submits. */
async function send(kind, key) {
  say("Building the bundle…");
  const planned = await plan(kind);
  let made;
  let signature;
  if (planned.signed) {
    made = await bundle.verified(planned);
    signature = planned.signed.signature;
  } else {
    made = await bundle.hashed(planned);
    signature = await bundle.sign(await key, made.bytes);
  }
  say(`Bundle ${made.hash.slice(0, 12)}… signed; uploading…`);
  const job = await bundle.submit(made, signature, (text) => say(text));
  say(`Job ${job.id} submitted (bundle ${made.hash}).`);
  return job;
}
