// Sign in: the API key is checked against GET /compute/credits/balance before it is kept.

import { ApiError, get } from "./api.js";
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
