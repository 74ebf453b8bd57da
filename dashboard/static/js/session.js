// What the signed-in person gave the dashboard, kept in sessionStorage (this tab only, gone
// when it closes; never a cookie, so no other site's page can use it).

const KEYS = { apiKey: "sgl.apiKey", adminToken: "sgl.adminToken", wallet: "sgl.wallet", signInKeyId: "sgl.signInKeyId" };

export function get(name) {
  return sessionStorage.getItem(KEYS[name]) ?? "";
}

export function set(name, value) {
  if (value) sessionStorage.setItem(KEYS[name], value);
  else sessionStorage.removeItem(KEYS[name]);
}

export function signOut() {
  for (const key of Object.values(KEYS)) sessionStorage.removeItem(key);
}
