// Sealing to a node and verifying it in the browser, byte for byte as sgl-protocol does
// (docs/protocol.md §1 and the seed's §2.4–§2.10): X25519 key agreement, HKDF-SHA256 and
// Ed25519 from the browser's WebCrypto, XChaCha20-Poly1305 from the vendored @noble/ciphers.
// Every blob is base58(nonce24 || ciphertext || tag16).

import { xchacha20poly1305 } from "../vendor/noble-ciphers/chacha.js";
import { decode as b58decode, encode as b58encode } from "./base58.js";
import { randomBytes, sha256Hex } from "./bytes.js";

export { randomBytes, sha256Hex };

const subtle = globalThis.crypto.subtle;
const utf8 = new TextEncoder();
const SALT = utf8.encode("sgl-e2e-v2-salt");
const INFO_INPUT = utf8.encode("sgl-e2e-v2-input");
const INFO_OUTPUT = utf8.encode("sgl-e2e-v2-output");
export const ALGORITHM_V2 = "x25519-xchacha20poly1305-hkdf-v2";
const KEYBIND_DOMAIN = utf8.encode("SGL-NODE-KEYBIND-v1\0");

/** Why a reply was refused; `step` names the check. */
export class VerifyError extends Error {
  constructor(step, message) {
    super(`${step}: ${message}`);
    this.step = step;
  }
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function uuidBytes(uuid) {
  const hex = uuid.replaceAll("-", "");
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new VerifyError("keybind", `not a node id: ${uuid}`);
  return Uint8Array.from(hex.match(/../g), (h) => parseInt(h, 16));
}

function b64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** An X25519 key pair: a fresh one, or (tests) the one with secret `secret` and public `pub`. */
export async function x25519KeyPair(fixed) {
  if (fixed) {
    const jwk = { kty: "OKP", crv: "X25519", d: b64url(fixed.secret), x: b64url(fixed.public) };
    const privateKey = await subtle.importKey("jwk", jwk, { name: "X25519" }, false, ["deriveBits"]);
    return { privateKey, publicRaw: fixed.public };
  }
  const pair = await subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
  return { privateKey: pair.privateKey, publicRaw: new Uint8Array(await subtle.exportKey("raw", pair.publicKey)) };
}

/** HKDF-SHA256(salt "sgl-e2e-v2-salt", X25519(secret, peer), info): the v2 key. */
async function deriveKey(privateKey, peerRaw, info) {
  const peer = await subtle.importKey("raw", peerRaw, { name: "X25519" }, false, []);
  let shared;
  try {
    shared = await subtle.deriveBits({ name: "X25519", public: peer }, privateKey, 256);
  } catch {
    throw new VerifyError("key agreement", "the peer key gives a non-contributory shared secret");
  }
  const ikm = await subtle.importKey("raw", shared, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: SALT, info }, ikm, 256));
}

function encrypt(key, aad, plaintext, nonce) {
  return b58encode(concat(nonce, xchacha20poly1305(key, nonce, aad).encrypt(plaintext)));
}

function decrypt(key, aad, blobB58) {
  const blob = b58decode(blobB58);
  if (blob.length < 40) throw new VerifyError("decrypt", "ciphertext too short");
  try {
    return xchacha20poly1305(key, blob.subarray(0, 24), aad).decrypt(blob.subarray(24));
  } catch {
    throw new VerifyError("decrypt", "the chunk does not open with this request's key");
  }
}

async function ed25519Verify(publicB58, message, signatureB58) {
  const key = await subtle.importKey("raw", b58decode(publicB58), { name: "Ed25519" }, false, ["verify"]);
  return subtle.verify({ name: "Ed25519" }, key, b58decode(signatureB58), message);
}

/**
 * Checks a `/v1/reserve` answer's keybind (§2.10): the node's ed25519 key signs
 * domain ‖ node id ‖ ed25519 key ‖ X25519 key ‖ version (u32 LE). Returns the node to seal to.
 */
export async function verifyReservation(reservation) {
  const { node_id, node_ed25519_pubkey, node_x25519_pubkey, encryption_public_key_signature, key_version } =
    reservation;
  if (!node_ed25519_pubkey || !node_x25519_pubkey || !encryption_public_key_signature || key_version == null) {
    throw new VerifyError("keybind", "the reservation carries no key binding");
  }
  const version = new Uint8Array(4);
  new DataView(version.buffer).setUint32(0, key_version, true);
  const message = concat(
    KEYBIND_DOMAIN,
    uuidBytes(node_id),
    b58decode(node_ed25519_pubkey),
    b58decode(node_x25519_pubkey),
    version,
  );
  if (!(await ed25519Verify(node_ed25519_pubkey, message, encryption_public_key_signature))) {
    throw new VerifyError("keybind", "the node's signature over its encryption key does not verify");
  }
  return {
    nodeId: node_id,
    identityKey: node_ed25519_pubkey,
    encryptionKey: node_x25519_pubkey,
    modelSha256: reservation.model_sha256 ?? null,
    reservationToken: reservation.reservation_token,
  };
}

/**
 * Seals `plaintext` (bytes) v2 to the node's X25519 key: the `enc` object and the response
 * key pair that opens the reply. `fixed` (tests only) supplies the keys and the nonce.
 */
export async function sealRequest(nodeKeyB58, plaintext, fixed) {
  const response = await x25519KeyPair(fixed?.response);
  const ephemeral = await x25519KeyPair(fixed?.ephemeral);
  const key = await deriveKey(ephemeral.privateKey, b58decode(nodeKeyB58), INFO_INPUT);
  const ephB58 = b58encode(ephemeral.publicRaw);
  const respB58 = b58encode(response.publicRaw);
  const aad = utf8.encode(`sgl-aad/v2/input|node=${nodeKeyB58}|eph=${ephB58}|resp=${respB58}`);
  const enc = {
    ciphertext: encrypt(key, aad, plaintext, fixed?.nonce ?? randomBytes(24)),
    client_ephemeral_pubkey: ephB58,
    client_response_pubkey: respB58,
    algorithm: ALGORITHM_V2,
  };
  return { enc, response: { privateKey: response.privateKey, publicB58: respB58 } };
}

function usageLine(usage) {
  return usage
    ? `prompt_tokens=${usage.prompt_tokens};completion_tokens=${usage.completion_tokens};total_tokens=${usage.total_tokens}`
    : "-";
}

/** Verifies a v2 result envelope (§1) over `payload` (the ciphertext string) with the node's key. */
async function verifyEnvelope(node, claims) {
  const { jobId, kind, payload, usage, modelSha256, proof, signature, version } = claims;
  if (!signature) throw new VerifyError("signature", "the reply is not signed");
  if (version !== "v2") throw new VerifyError("signature", `envelope version ${JSON.stringify(version)} is not v2`);
  const payloadBytes = utf8.encode(payload);
  const expectedProof = await sha256Hex(concat(utf8.encode(jobId), payloadBytes, utf8.encode(node.nodeId)));
  if (proof && proof !== expectedProof) throw new VerifyError("proof", "the proof of execution does not match");
  if (modelSha256 && !/^[0-9a-f]{64}$/.test(modelSha256)) throw new VerifyError("model", "model_sha256 is not sha256 hex");
  if (node.modelSha256 && modelSha256 && node.modelSha256 !== modelSha256) {
    throw new VerifyError("model", "the signed model differs from the reserved one");
  }
  const message = [
    "sgl-result-v2",
    jobId,
    node.nodeId,
    kind,
    await sha256Hex(payloadBytes),
    usageLine(usage),
    modelSha256 ?? "-",
    expectedProof,
  ].join("\n");
  if (!(await ed25519Verify(node.identityKey, utf8.encode(message), signature))) {
    throw new VerifyError("signature", "the node's signature does not verify");
  }
}

/**
 * Verifies and opens a sealed stream chunk by chunk, in order: node, job, model, the v2
 * signature over the ciphertext (and the usage on the final chunk), then decryption under
 * the stream key. Any failure poisons the stream.
 */
export class StreamVerifier {
  constructor(node, response, nonce) {
    Object.assign(this, { node, response, nonce, nextSeq: 0, eph: null, key: null, jobId: null, done: false, failed: false });
  }

  /** The next event's text; `end` holds the signed usage on the final chunk. */
  async open(event) {
    if (this.failed) throw new VerifyError("stream", "the stream already failed verification");
    try {
      return await this.#open(event);
    } catch (error) {
      this.failed = true;
      throw error;
    }
  }

  async #open(event) {
    if (this.done) throw new VerifyError("order", "a chunk after the final one");
    if (event.seq !== this.nextSeq) throw new VerifyError("order", `expected chunk ${this.nextSeq}, got ${event.seq}`);
    if (this.eph === null && !event.eph) throw new VerifyError("order", "the first chunk carries no ephemeral key");
    if (this.eph !== null && event.eph && event.eph !== this.eph) throw new VerifyError("order", "the stream's key changed");
    if (!event.job_id || (this.jobId && event.job_id !== this.jobId)) throw new VerifyError("order", "a chunk of another job");
    if (event.node_id && event.node_id !== this.node.nodeId) throw new VerifyError("node", "answered by another node");
    const isFinal = event.final === true;
    await verifyEnvelope(this.node, {
      jobId: event.job_id,
      kind: `stream:${event.seq}:${isFinal ? 1 : 0}`,
      payload: event.ct,
      usage: event.usage,
      modelSha256: event.model_sha256,
      proof: event.proof_of_execution,
      signature: event.sig,
      version: event.sig_version,
    });
    if (this.key === null) {
      this.eph = event.eph;
      this.key = await deriveKey(this.response.privateKey, b58decode(event.eph), INFO_OUTPUT);
    }
    const aad = utf8.encode(
      `sgl-aad/v2/stream|resp=${this.response.publicB58}|eph=${this.eph}|nonce=${this.nonce}|seq=${event.seq}|final=${isFinal ? 1 : 0}`,
    );
    const text = new TextDecoder("utf-8", { fatal: true }).decode(decrypt(this.key, aad, event.ct));
    this.jobId = event.job_id;
    this.nextSeq += 1;
    if (!isFinal) return { text, end: null };
    this.done = true;
    if (!event.usage) throw new VerifyError("usage", "the final chunk carries no usage");
    return { text, end: { usage: event.usage, jobId: event.job_id, modelSha256: event.model_sha256 ?? null } };
  }
}

/** Verifies and opens a sealed non-stream reply (a node that answered a stream whole). */
export async function openSealedReply(node, response, reply) {
  if (reply.node_id && reply.node_id !== node.nodeId) throw new VerifyError("node", "answered by another node");
  if (!reply.usage) throw new VerifyError("usage", "the reply carries no usage");
  await verifyEnvelope(node, {
    jobId: reply.id,
    kind: "sealed",
    payload: reply.sealed_result.ciphertext,
    usage: reply.usage,
    modelSha256: reply.model_sha256,
    proof: reply.proof_of_execution,
    signature: reply.result_envelope_signature,
    version: reply.result_envelope_version,
  });
  const eph = reply.sealed_result.ephemeral_public_key;
  const key = await deriveKey(response.privateKey, b58decode(eph), INFO_OUTPUT);
  const aad = utf8.encode(`sgl-aad/v2/output|resp=${response.publicB58}|eph=${eph}`);
  const result = JSON.parse(new TextDecoder().decode(decrypt(key, aad, reply.sealed_result.ciphertext)));
  return { text: result.content ?? "", usage: reply.usage, jobId: reply.id, modelSha256: reply.model_sha256 ?? null };
}
