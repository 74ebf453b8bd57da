// Sign in: the API key is checked against GET /compute/credits/balance before it is kept. Or
// the browser's wallet signs the grid's sign-in text (EIP-191 personal_sign over
// sgl_protocol's sign_in_message) and POST /v1/auth/wallet answers with a key of the wallet's
// account that expires in 12 hours (revoked at sign-out).

import { ApiError, get, post } from "./api.js";
import { hex, randomBytes } from "./bytes.js";
import * as session from "./session.js";
import { $, say } from "./ui.js";

$("#api-key").value = session.get("apiKey");
$("#wallet").value = session.get("wallet");
$("#admin-token").value = session.get("adminToken");

$("#sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  const apiKey = $("#api-key").value.trim();
  session.set("wallet", $("#wallet").value.trim());
  session.set("adminToken", $("#admin-token").value.trim());
  session.set("apiKey", apiKey);
  let next = new URLSearchParams(location.search).get("next") ?? "";
  if (!next.startsWith("/dashboard/")) next = "";
  if (apiKey) {
    try {
      await get("/compute/credits/balance");
    } catch (error) {
      session.set("apiKey", "");
      say(error instanceof ApiError && error.status === 401 ? "The grid does not know this API key." : error.message, true);
      return;
    }
    location.assign(next || "/dashboard/account.html");
  } else if (session.get("adminToken")) {
    location.assign(next || "/dashboard/admin.html");
  } else if (session.get("wallet")) {
    location.assign(next || "/dashboard/operator.html");
  } else {
    say("Enter an API key, a wallet or an admin token.", true);
  }
});

/** The text the grid checks the signature against (`sign_in_message` in sgl-protocol). */
function signInMessage(host, wallet, nonce, signedAt) {
  return `sgl-sign-in:v1\nSign in to the grid at ${host} with ${wallet}.\nnonce: ${nonce}\nsigned at: ${signedAt}`;
}

async function walletSignIn() {
  if (!window.ethereum) return;
  try {
    const [wallet] = await window.ethereum.request({ method: "eth_requestAccounts" });
    const nonce = hex(randomBytes(16));
    const signedAt = Math.floor(Date.now() / 1000);
    const message = signInMessage(location.host, wallet, nonce, signedAt);
    say("Sign the sign-in text in your wallet…");
    const signature = await window.ethereum.request({
      method: "personal_sign",
      params: [`0x${hex(new TextEncoder().encode(message))}`, wallet],
    });
    const signedIn = await post("/v1/auth/wallet", { wallet, nonce, signed_at: signedAt, signature }, { auth: "none" });
    session.set("apiKey", signedIn.api_key);
    session.set("signInKeyId", String(signedIn.id));
    session.set("wallet", signedIn.wallet);
    location.assign("/dashboard/account.html");
  } catch (error) {
    say(`Wallet sign-in failed: ${error.message}`, true);
  }
}

const walletButton = $("#wallet-sign-in");
if (window.ethereum) {
  walletButton.addEventListener("click", walletSignIn);
} else {
  walletButton.disabled = true;
  $("#wallet-note").textContent = "No browser wallet was found (window.ethereum): sign in with an API key instead.";
}
