// The jobs page's bundles: the per-class forms plan the bundle `sgl-cloud train|image|render`
// plans from the same choices (crates/sgl-cloud/src/classes/*.rs), and an uploaded directory is
// read as `sgl-cloud bundle sign` reads one. A plan is `{ manifest, files, inputs }` (files and
// inputs: Maps of path → bytes); `bundle.js` hashes, signs and submits it. Bad choices throw a
// `PlanError` naming the field.

export class PlanError extends Error {
  constructor(field, message) {
    super(message);
    this.field = field;
  }
}

const MAX_SLICES = 1024;
const MAX_REDUNDANCY = 9;
const GIGA = 1_000_000_000;
const MAX_FRAME = 1_048_574;
const MAX_RESOLUTION = 65_536;
const MAX_SAMPLES = 1 << 24;

/** A whole number of `field` in `low..=high`. */
function whole(form, field, low, high = Number.MAX_SAFE_INTEGER) {
  const value = Number(form[field]);
  if (!Number.isSafeInteger(value) || value < low || value > high) {
    throw new PlanError(field, `${field} must be a whole number from ${low} to ${high}`);
  }
  return value;
}

function manifest(form, parts) {
  const redundancy = whole(form, "redundancy", 1, MAX_REDUNDANCY);
  const wallSecs = whole(form, "wall_secs", 1, 4_294_967_295);
  if (parts.slices.length < 1 || parts.slices.length > MAX_SLICES) {
    throw new PlanError("slices", `this makes ${parts.slices.length} slices; a job has 1 to ${MAX_SLICES}`);
  }
  const engine = parts.engine;
  if (engine != null && !(/^[!-~]+ [!-~]+$/.test(engine) && engine.length >= 3 && engine.length <= 64)) {
    throw new PlanError("engine", `engine ${JSON.stringify(engine)} must be a name and a version, e.g. "blender 3.4.1"`);
  }
  return {
    format: "sgl-bundle-v1",
    class: parts.class,
    entry: parts.entry,
    args: parts.args,
    files: {},
    inputs: {},
    limits: { ...parts.limits, wall_secs: wallSecs },
    slices: parts.slices.map((args) => ({ args })),
    redundancy,
    max_price_micros_per_gfuel: whole(form, "max_price", 0),
    seed: parts.seed,
    ...(engine == null ? {} : { engine }),
  };
}

/** `sgl-cloud train`: the mnist-train guest (`module`), `data` as /in/mnist.csv, an epoch a slice. */
export function train(form, data, module) {
  const hidden = whole(form, "hidden", 1, 1024);
  const lr = Number(form.lr);
  if (!(lr > 0 && lr <= 10)) throw new PlanError("lr", "the learning rate must be above 0 and at most 10");
  const epochs = whole(form, "epochs", 1, MAX_SLICES);
  const seed = whole(form, "seed", 0);
  if (!data) throw new PlanError("data", "choose the training data (a CSV of 785 columns)");
  const slices = [];
  for (let epoch = 1; epoch <= epochs; epoch++) {
    slices.push(["--epoch", String(epoch), ...(epoch > 1 ? ["--resume", "/in/prev/ckpt.bin"] : [])]);
  }
  const parts = {
    class: "train",
    entry: "train.wasm",
    args: ["--data", "/in/mnist.csv", "--seed", String(seed), "--hidden", String(hidden), "--lr", String(lr)],
    slices,
    limits: { fuel: 3 * GIGA * Math.ceil(hidden / 64), memory_mb: 256, output_mb: 16, output_files: 4 },
    seed,
  };
  return { manifest: manifest(form, parts), files: new Map([["train.wasm", module]]), inputs: new Map([["mnist.csv", data]]) };
}

/** `sgl-cloud image`: a pipeline directory (`files`, path → bytes) whose `entry` runs. */
export function image(form, entry, files) {
  const images = whole(form, "images", 1);
  const perSlice = whole(form, "per_slice", 1, 1024);
  const seed = whole(form, "seed", 0);
  const slices = Math.ceil(images / perSlice);
  if (slices > MAX_SLICES) {
    throw new PlanError("images", `${images} images at ${perSlice} per slice is ${slices} slices; a job has at most ${MAX_SLICES}`);
  }
  if (!files.has(entry)) throw new PlanError("pipeline", `the chosen folder has no ${entry}`);
  for (const reserved of ["manifest.json", "manifest.sig", "in"]) {
    if ([...files.keys()].some((name) => name === reserved || name.startsWith(`${reserved}/`))) {
      throw new PlanError("pipeline", `${reserved} is in the pipeline's folder; a bundle keeps that name for itself`);
    }
  }
  const counts = Array.from({ length: slices }, (_, i) => Math.min(perSlice, images - i * perSlice));
  const most = Math.max(...counts);
  const parts = {
    class: "image",
    entry,
    args: form.prompt ? ["--prompt", form.prompt] : [],
    slices: counts.map((count, i) => ["--seed", String(seed + i), "--count", String(count)]),
    limits: { fuel: most * GIGA, memory_mb: 1024, output_mb: 64, output_files: most },
    seed,
    engine: form.engine,
  };
  return { manifest: manifest(form, parts), files, inputs: new Map() };
}

/** "N", "A-B" and comma lists of them, in order, each once (`sgl-cloud render --frames`). */
export function frames(text) {
  const out = [];
  for (const part of String(text).split(",")) {
    const number = (t) => {
      if (!/^\s*\d+\s*$/.test(t)) throw new PlanError("frames", `frames: ${JSON.stringify(part)} is not N or A-B`);
      return Number(t);
    };
    const dash = part.indexOf("-");
    const [first, last] = dash < 0 ? [number(part), number(part)] : [number(part.slice(0, dash)), number(part.slice(dash + 1))];
    if (first > last) throw new PlanError("frames", `frames: ${JSON.stringify(part)} runs backwards`);
    if (last - first + out.length >= MAX_SLICES) throw new PlanError("frames", `more than ${MAX_SLICES} frames`);
    for (let frame = first; frame <= last; frame++) {
      if (out.includes(frame)) throw new PlanError("frames", `frame ${frame} is given twice`);
      if (frame > MAX_FRAME) throw new PlanError("frames", `frame ${frame} is above ${MAX_FRAME}`);
      out.push(frame);
    }
  }
  return out;
}

function resolution(text) {
  if (!text) return null;
  const match = /^(\d+)x(\d+)$/.exec(text);
  const sides = match ? [Number(match[1]), Number(match[2])] : [];
  if (sides.length !== 2 || sides.some((side) => side < 1 || side > MAX_RESOLUTION)) {
    throw new PlanError("resolution", `resolution must be WIDTHxHEIGHT, each 1 to ${MAX_RESOLUTION} (e.g. 320x240)`);
  }
  return sides;
}

/** `sgl-cloud render`: a .blend scene, a slice per frame or per band of a frame's rows. */
export function render(form, sceneName, scene) {
  const samples = whole(form, "samples", 1, MAX_SAMPLES);
  const size = resolution(form.resolution);
  const bands = whole(form, "bands", 1);
  if (bands > 1 && !size) throw new PlanError("bands", "more than one band needs a resolution: bands are cut from the frame's height");
  if (size && bands > size[1]) throw new PlanError("bands", `bands must be 1 to the frame's height (${size[1]} rows)`);
  const seed = form.seed === "" || form.seed == null ? null : whole(form, "seed", 0, 4_294_967_295);
  if (!scene) throw new PlanError("scene", "choose a .blend scene");
  const edge = (band) => Math.floor((band * size[1]) / bands);
  const slices = [];
  for (const frame of frames(form.frames)) {
    if (bands === 1) slices.push(["--frame", String(frame)]);
    else for (let band = 0; band < bands; band++) slices.push(["--frame", String(frame), "--rows", `${edge(band)}-${edge(band + 1)}`]);
  }
  const tallest = size ? (bands === 1 ? size[1] : Math.max(...Array.from({ length: bands }, (_, b) => edge(b + 1) - edge(b)))) : 0;
  const fuel = size ? size[0] * tallest * samples : 10 * GIGA;
  if (!Number.isSafeInteger(fuel)) {
    throw new PlanError("samples", "this resolution at these samples is more pixel samples than the page can count exactly; use sgl-cloud render");
  }
  const parts = {
    class: "render",
    entry: sceneName,
    args: ["--samples", String(samples), ...(size ? ["--resolution", `${size[0]}x${size[1]}`] : []), ...(seed == null ? [] : ["--seed", String(seed)])],
    slices,
    limits: { fuel, memory_mb: 1024, output_mb: 64, output_files: 2 },
    seed: seed ?? 0,
    engine: form.engine,
  };
  return { manifest: manifest(form, parts), files: new Map([[sceneName, scene]]), inputs: new Map() };
}

/** Every number in `value` must survive JSON.parse exactly. */
function exactNumbers(value, where = "manifest.json") {
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new PlanError("bundle", `${where} holds ${value}, which this page cannot carry exactly; sign it with sgl-cloud bundle sign`);
  }
  if (value && typeof value === "object") for (const [key, inner] of Object.entries(value)) exactNumbers(inner, `${where}: ${key}`);
}

/**
 * A bundle directory (path → bytes, relative to it) as `sgl-cloud bundle sign` reads it: the
 * manifest with every file but manifest.json and manifest.sig hashed into `files` and every file
 * under in/ into `inputs`. With a manifest.sig, `signed` holds the manifest's exact bytes and the
 * signature, to submit unchanged.
 */
export function directory(files) {
  const text = files.get("manifest.json");
  if (!text) throw new PlanError("bundle", "the folder has no manifest.json (start one with sgl-cloud bundle init)");
  let parsed;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(text));
  } catch (error) {
    throw new PlanError("bundle", `manifest.json is not JSON: ${error.message}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new PlanError("bundle", "manifest.json is not a JSON object");
  exactNumbers(parsed);
  const plan = { manifest: parsed, files: new Map(), inputs: new Map() };
  for (const [name, bytes] of files) {
    if (name === "manifest.json" || name === "manifest.sig") continue;
    if (name.startsWith("in/")) plan.inputs.set(name.slice(3), bytes);
    else plan.files.set(name, bytes);
  }
  const sig = files.get("manifest.sig");
  if (sig) {
    try {
      plan.signed = { bytes: text, signature: JSON.parse(new TextDecoder().decode(sig)) };
    } catch (error) {
      throw new PlanError("bundle", `manifest.sig is not a bundle signature: ${error.message}`);
    }
  }
  return plan;
}
