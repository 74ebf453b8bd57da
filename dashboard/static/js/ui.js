// Small DOM helpers shared by the pages: building elements, money and time formatting, the
// page header's sign-in state, and status messages announced to screen readers.

import { call } from "./api.js";
import * as session from "./session.js";

/** `el("td", {class: "x"}, "text", child)`: an element with attributes and children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector) => document.querySelector(selector);

export function usd(micros) {
  return `$${(micros / 1e6).toFixed(micros !== 0 && Math.abs(micros) < 10000 ? 6 : 2)}`;
}

export function sgl(micros) {
  return `${(micros / 1e6).toLocaleString("en-US", { maximumFractionDigits: 6 })} SGL`;
}

/** Shows `text` in the page's live status region (role=status), as an error when `error`. */
export function say(text, error = false) {
  const status = $("#status");
  if (!status) return;
  status.textContent = text;
  status.classList.toggle("error", error);
}

/** Replaces `container`'s children. */
export function fill(container, ...children) {
  container.replaceChildren(...children.flat());
}

/** The header's "signed in" line and sign-out button; sends the unsigned to sign in when `need`. */
export function header(need) {
  const missing = need && !session.get(need);
  if (missing) {
    location.replace(`/dashboard/?next=${encodeURIComponent(location.pathname)}`);
    return false;
  }
  const out = $("#sign-out");
  out?.addEventListener("click", async () => {
    // A wallet sign-in's key is revoked with the sign-out (best effort: it expires anyway).
    const signInKey = session.get("signInKeyId");
    if (signInKey) await call("DELETE", `/v1/keys/${encodeURIComponent(signInKey)}`).catch(() => {});
    session.signOut();
    location.assign("/dashboard/");
  });
  const here = location.pathname.split("/").pop() || "index.html";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href").endsWith(here)) link.setAttribute("aria-current", "page");
  }
  return true;
}
