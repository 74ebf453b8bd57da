// A credits top-up paid with x402 from a browser wallet (EIP-1193 `window.ethereum`): the grid
// answers POST /compute/credits/topup with 402 and its x402 v2 requirements; the wallet signs
// the EIP-3009 TransferWithAuthorization they describe (eth_signTypedData_v4); the same request
// is sent again with the payment in PAYMENT-SIGNATURE, and the grid settles it before crediting
// the signed-in key. The page never sees a private key.

import { ApiError, headers } from "./api.js";
import { hex, randomBytes } from "./bytes.js";

const TRANSFER_WITH_AUTHORIZATION = [
  { name: "from", type: "address" },
  { name: "to", type: "address" },
  { name: "value", type: "uint256" },
  { name: "validAfter", type: "uint256" },
  { name: "validBefore", type: "uint256" },
  { name: "nonce", type: "bytes32" },
];
const EIP712_DOMAIN = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
];

/** Whether this browser has a wallet to pay with. */
export function present() {
  return typeof window.ethereum?.request === "function";
}

function post(body, payment) {
  const extra = payment ? { "PAYMENT-SIGNATURE": btoa(JSON.stringify(payment)) } : {};
  return fetch("/compute/credits/topup", {
    method: "POST",
    headers: { ...headers("key", true), ...extra },
    body: JSON.stringify(body),
    credentials: "omit",
  });
}

/** Tops the signed-in key up by `amountUsd`, paid by the wallet: the grid's answer. */
export async function topUp(amountUsd) {
  const [from] = await window.ethereum.request({ method: "eth_requestAccounts" });
  const body = { amount_usd: amountUsd };
  const quote = await post(body);
  if (quote.status !== 402) throw new ApiError(quote.status, await quote.json().catch(() => null));
  const required = JSON.parse(atob(quote.headers.get("PAYMENT-REQUIRED") ?? ""));
  const accepted = required.accepts.find((a) => a.scheme === "exact" && a.network.startsWith("eip155:"));
  if (!accepted) throw new Error("the grid asks for no payment a browser wallet can make");
  const now = Math.floor(Date.now() / 1000);
  const authorization = {
    from,
    to: accepted.payTo,
    value: String(accepted.amount),
    validAfter: String(now - 60),
    validBefore: String(now + accepted.maxTimeoutSeconds),
    nonce: `0x${hex(randomBytes(32))}`,
  };
  const typed = {
    types: { EIP712Domain: EIP712_DOMAIN, TransferWithAuthorization: TRANSFER_WITH_AUTHORIZATION },
    domain: {
      name: accepted.extra?.name,
      version: accepted.extra?.version,
      chainId: Number(accepted.network.split(":")[1]),
      verifyingContract: accepted.asset,
    },
    primaryType: "TransferWithAuthorization",
    message: authorization,
  };
  const signature = await window.ethereum.request({ method: "eth_signTypedData_v4", params: [from, JSON.stringify(typed)] });
  const payment = { x402Version: 2, resource: required.resource, accepted, payload: { signature, authorization } };
  const paid = await post(body, payment);
  const answer = await paid.json().catch(() => null);
  if (!paid.ok) {
    const reason = paid.headers.get("PAYMENT-REQUIRED") ? JSON.parse(atob(paid.headers.get("PAYMENT-REQUIRED"))).error : null;
    throw new ApiError(paid.status, reason ? { error: { message: `payment refused: ${reason}` } } : answer);
  }
  return answer;
}
