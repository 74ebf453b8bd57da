// Bundles made in the page, byte for byte as sgl-cloud makes them: the manifest written in the
// protocol's field order as pretty JSON (serde_json's layout: two spaces, a final newline), its
// files and inputs hashed into it, and signed by the requester's ed25519 key over
// "sgl-bundle-v1\0" ‖ SHA-256(manifest bytes), in base58. The key is made by WebCrypto and kept
// in this browser's IndexedDB, its private half not extractable. Then every file is uploaded
// once (PUT /v1/blobs/{sha256}) and the job submitted (POST /v1/jobs), as `sgl-cloud jobs
// submit` does. dashboard/test-vectors/bundle-v1.json holds this module to the CLI's bytes.

import { ApiError, headers, post } from "./api.js";
import { encode as b58encode } from "./base58.js";
import { sha256Hex } from "./bytes.js";

const subtle = globalThis.crypto.subtle;
const DOMAIN = new TextEncoder().encode("sgl-bundle-v1\0");
const ORDER = ["format", "class", "entry", "args", "files", "inputs", "limits", "slices", "redundancy",
  "max_price_micros_per_gfuel", "seed", "secrets", "model", "engine"];
const LIMITS = ["fuel", "memory_mb", "wall_secs", "output_mb", "output_files"];

/** `value`'s keys in `keys`' order, then any others (unknown ones: the grid names them). */
function ordered(value, keys) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
  const out = {};
  for (const key of keys) if (key in value) out[key] = value[key];
  for (const key of Object.keys(value)) if (!keys.includes(key)) out[key] = value[key];
  return out;
}

function sortedKeys(map) {
  const out = {};
  for (const key of Object.keys(map ?? {}).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) out[key] = map[key];
  return out;
}

/** The manifest's exact bytes, as sgl-cloud writes a `BundleManifest`. */
export function manifestBytes(manifest) {
  const full = { args: [], inputs: {}, redundancy: 1, seed: 0, ...manifest };
  if (!full.secrets?.length) delete full.secrets;
  if (full.model == null) delete full.model;
  if (full.engine == null) delete full.engine;
  full.files = sortedKeys(full.files);
  full.inputs = sortedKeys(full.inputs);
  full.limits = ordered(full.limits, LIMITS);
  if (Array.isArray(full.slices)) full.slices = full.slices.map((slice) => ordered({ args: [], ...slice }, ["args"]));
  if (full.model) full.model = ordered(full.model, ["sha256", "max_tokens"]);
  return new TextEncoder().encode(`${JSON.stringify(ordered(full, ORDER), null, 2)}\n`);
}

/**
 * A plan's manifest with every file and input hashed in: `{ bytes, hash, blobs }`, where `blobs`
 * maps each sha256 to the bytes to upload.
 */
export async function hashed(plan) {
  const blobs = new Map();
  const digests = async (files) => {
    const out = {};
    for (const [name, bytes] of files) {
      out[name] = await sha256Hex(bytes);
      blobs.set(out[name], bytes);
    }
    return out;
  };
  const manifest = { ...plan.manifest, files: await digests(plan.files), inputs: await digests(plan.inputs) };
  const bytes = manifestBytes(manifest);
  return { bytes, hash: await sha256Hex(bytes), blobs };
}

/**
 * A directory signed elsewhere (`plan.signed`), checked as `sgl-cloud bundle verify` does: every
 * listed file and input present with its hash, nothing unlisted. `{ bytes, hash, blobs }`.
 */
export async function verified(plan) {
  const blobs = new Map();
  const compare = async (listed = {}, found, prefix) => {
    for (const [name, digest] of Object.entries(listed)) {
      if (!found.has(name)) throw new Error(`${prefix}${name} is listed in manifest.json but missing`);
      const actual = await sha256Hex(found.get(name));
      if (actual !== digest) throw new Error(`${prefix}${name} does not match manifest.json (sign the bundle again)`);
      blobs.set(digest, found.get(name));
    }
    const extra = [...found.keys()].find((name) => !(name in listed));
    if (extra) throw new Error(`${prefix}${extra} is in the folder but not in manifest.json (sign again, or remove it)`);
  };
  await compare(plan.manifest.files, plan.files, "");
  await compare(plan.manifest.inputs, plan.inputs, "in/");
  return { bytes: plan.signed.bytes, hash: await sha256Hex(plan.signed.bytes), blobs };
}

/** The requester's signature over exact manifest bytes: `{ requester, signature }`. */
export async function sign(key, bytes) {
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  const message = new Uint8Array([...DOMAIN, ...digest]);
  const signature = new Uint8Array(await subtle.sign({ name: "Ed25519" }, key.privateKey, message));
  return { requester: key.requester, signature: b58encode(signature) };
}

async function withPublic(pair) {
  const raw = new Uint8Array(await subtle.exportKey("raw", pair.publicKey));
  return { ...pair, requester: b58encode(raw) };
}

/** A key from a 32-byte ed25519 seed (the test vector's), as sgl-protocol's `from_seed`. */
export async function keyFromSeed(seed) {
  const pkcs8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
    0x04, 0x20, ...seed]);
  const privateKey = await subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
  const jwk = await subtle.exportKey("jwk", privateKey);
  delete jwk.d;
  jwk.key_ops = ["verify"];
  const publicKey = await subtle.importKey("jwk", jwk, { name: "Ed25519" }, true, ["verify"]);
  return withPublic({ privateKey, publicKey });
}

function keyStore(mode, work) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("sgl-dashboard", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("keys");
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const request = work(open.result.transaction("keys", mode).objectStore("keys"));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    };
  });
}

/** This browser's requester key, made (not extractable) and kept on first use. */
export async function requesterKey() {
  const kept = await keyStore("readonly", (store) => store.get("requester"));
  if (kept) return withPublic(kept);
  const pair = await subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
  await keyStore("readwrite", (store) => store.put({ privateKey: pair.privateKey, publicKey: pair.publicKey }, "requester"));
  return withPublic(pair);
}

/** Uploads each blob once and submits the signed manifest; resolves to the job (JobView). */
export async function submit({ bytes, blobs }, signature, progress = () => {}) {
  let done = 0;
  for (const [digest, blob] of blobs) {
    const response = await fetch(`/v1/blobs/${digest}`, {
      method: "PUT",
      headers: { ...headers("key"), "Content-Type": "application/octet-stream" },
      body: blob,
      credentials: "omit",
    });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    progress(`uploaded ${++done} of ${blobs.size} file(s)`);
  }
  return post("/v1/jobs", { manifest: new TextDecoder().decode(bytes), signature });
}
