// The grid's JSON API, as the CLI calls it: the API key (or the admin token) in a header, and
// OpenAI-shaped error bodies turned into an `ApiError` with the grid's message and code.

import * as session from "./session.js";

export class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(typeof error === "string" ? error : error.message ?? `HTTP ${status}`);
    Object.assign(this, { status, code: error.code ?? null, param: error.param ?? null });
  }
}

/** Headers for `auth`: "key" (the caller's API key), "admin" (the admin token) or "none". */
export function headers(auth = "key", json = false) {
  const out = {};
  if (json) out["Content-Type"] = "application/json";
  if (auth === "key") out.Authorization = `Bearer ${session.get("apiKey")}`;
  if (auth === "admin") out["X-Admin-Token"] = session.get("adminToken");
  return out;
}

/** `method path` with an optional JSON body; resolves to the parsed JSON answer. */
export async function call(method, path, { body, auth = "key" } = {}) {
  const response = await fetch(path, {
    method,
    headers: headers(auth, body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = { error: { message: text.slice(0, 200) } };
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

export const get = (path, options) => call("GET", path, options);
export const post = (path, body, options) => call("POST", path, { ...options, body });
