"""Pay the grid per request with the stock Python `x402` client and nothing but an EVM key.

Run by the Rust test `x402_payments` with SGL_E2E_BASE_URL (the grid, no /v1), SGL_E2E_MODEL
and SGL_E2E_PAYER_KEY (a hex private key the test funded with test USDC through
`sgl-grid admin faucet`). Asserts, then prints one JSON summary line on stdout:

1. an unpaid chat completion is answered 402 with a v2 PAYMENT-REQUIRED header and a v1 body;
2. `wrapRequestsWithPayment` pays it (default spend controls on) and gets the completion, with a
   PAYMENT-RESPONSE naming this payer;
3. the same payment header sent again is refused (402, the nonce is used);
4. an authorization that expired before it arrives is refused (402, valid_before);
5. the MPP Python client `pympp` pays the same completion through the 402's
   `WWW-Authenticate: Payment` challenge (method evm), gets a `Payment-Receipt`, and a replay of
   its credential is refused (402, verification-failed);
6. a credits top-up paid with x402 returns a new API key whose balance holds the top-up and
   what both completions' quotes left unspent.
"""

import asyncio
import base64
import json
import os
import secrets
import time

import requests
from eth_account import Account
from x402 import x402ClientSync
from x402.http import x402HTTPClientSync
from x402.http.clients.requests import wrapRequestsWithPayment
from x402.mechanisms.evm.exact import register_exact_evm_client
from mpp import Receipt
from mpp.client import Mpp
from mpp.methods.evm import client as mpp_evm


def decode(header: str) -> dict:
    return json.loads(base64.b64decode(header))


def expired_payment(account, requirement: dict, resource: dict) -> str:
    """A correctly signed EIP-3009 authorization whose validBefore has already passed."""
    now = int(time.time())
    authorization = {
        "from": account.address,
        "to": requirement["payTo"],
        "value": int(requirement["amount"]),
        "validAfter": 0,
        "validBefore": now - 60,
        "nonce": "0x" + secrets.token_hex(32),
    }
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "TransferWithAuthorization": [
                {"name": "from", "type": "address"},
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "validAfter", "type": "uint256"},
                {"name": "validBefore", "type": "uint256"},
                {"name": "nonce", "type": "bytes32"},
            ],
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": requirement["extra"]["name"],
            "version": requirement["extra"]["version"],
            "chainId": int(requirement["network"].split(":")[1]),
            "verifyingContract": requirement["asset"],
        },
        "message": authorization,
    }
    signed = account.sign_typed_data(full_message=typed)
    wire_authorization = {key: str(value) for key, value in authorization.items()}
    payload = {
        "x402Version": 2,
        "resource": resource,
        "accepted": requirement,
        "payload": {"signature": "0x" + signed.signature.hex().removeprefix("0x"), "authorization": wire_authorization},
    }
    return base64.b64encode(json.dumps(payload).encode()).decode()


async def pay_with_mpp(account, url: str, body: dict, requirement: dict) -> dict:
    """Pays `url` with pympp's evm charge, then replays its credential with plain httpx."""
    import httpx

    method = mpp_evm.charge(
        currency=requirement["asset"],
        account=account,
        chain_id=int(requirement["network"].split(":")[1]),
        decimals=6,
        authorization={"name": requirement["extra"]["name"], "version": requirement["extra"]["version"]},
    )
    credentials: list[str] = []
    async with Mpp(methods=[method]) as mpp:
        mpp.on_credential_created(lambda event: credentials.append(event["credential"].to_authorization()))
        response = await mpp.fetch(url, method="POST", json=body, timeout=300)
    assert response.status_code == 200, f"mpp: {response.status_code} {response.text}"
    assert len(credentials) == 1, f"one credential, not {len(credentials)}"
    receipt = Receipt.from_payment_receipt(response.headers["payment-receipt"])
    assert receipt.status == "success" and receipt.method == "evm", receipt
    async with httpx.AsyncClient(trust_env=False, timeout=60) as plain:
        replay = await plain.post(url, json=body, headers={"Authorization": credentials[0]})
    assert replay.status_code == 402, f"mpp replay: {replay.status_code} {replay.text}"
    problem = replay.json()["type"]
    assert problem.endswith("/verification-failed"), problem
    assert replay.headers.get("www-authenticate", "").startswith("Payment "), "a fresh challenge"
    return {"id": response.json()["id"], "reference": receipt.reference, "replay_problem": problem}


def main() -> None:
    base = os.environ["SGL_E2E_BASE_URL"]
    model = os.environ["SGL_E2E_MODEL"]
    account = Account.from_key(os.environ["SGL_E2E_PAYER_KEY"])
    chat_url = f"{base}/v1/chat/completions"
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8, "temperature": 0}

    # 1. Unpaid: the dual 402.
    unpaid = requests.post(chat_url, json=body, timeout=60)
    assert unpaid.status_code == 402, f"unpaid: {unpaid.status_code} {unpaid.text}"
    required = decode(unpaid.headers["PAYMENT-REQUIRED"])
    assert required["x402Version"] == 2, required
    [requirement] = required["accepts"]
    assert requirement["network"] == "eip155:84532", requirement
    assert unpaid.json()["x402Version"] == 1, unpaid.text
    quote = int(requirement["amount"])

    # 2. Paid by the stock client.
    client = x402ClientSync()
    register_exact_evm_client(client, account)
    session = wrapRequestsWithPayment(requests.Session(), client)
    paid = session.post(chat_url, json=body, timeout=300)
    assert paid.status_code == 200, f"paid: {paid.status_code} {paid.text}"
    completion = paid.json()
    assert completion["choices"][0]["message"]["role"] == "assistant", completion
    settle = x402HTTPClientSync(client).get_payment_settle_response(lambda name: paid.headers.get(name))
    assert settle.success, settle
    assert settle.payer.lower() == account.address.lower(), (settle.payer, account.address)
    payment_header = paid.request.headers["PAYMENT-SIGNATURE"]

    # 3. The same payment again: refused, nothing served.
    replay = requests.post(chat_url, json=body, headers={"PAYMENT-SIGNATURE": payment_header}, timeout=60)
    assert replay.status_code == 402, f"replay: {replay.status_code} {replay.text}"
    replay_reason = decode(replay.headers["PAYMENT-RESPONSE"])["errorReason"]
    assert replay_reason == "invalid_exact_evm_nonce_already_used", replay_reason

    # 4. An authorization that has expired: refused.
    stale = expired_payment(account, requirement, required["resource"])
    expired = requests.post(chat_url, json=body, headers={"PAYMENT-SIGNATURE": stale}, timeout=60)
    assert expired.status_code == 402, f"expired: {expired.status_code} {expired.text}"
    expired_reason = decode(expired.headers["PAYMENT-RESPONSE"])["errorReason"]
    assert expired_reason == "invalid_exact_evm_payload_authorization_valid_before", expired_reason

    # 5. The MPP client pays the same completion.
    mpp_paid = asyncio.run(pay_with_mpp(account, chat_url, body, requirement))

    # 6. A top-up, paid with x402, gives a key holding the top-up and the unspent quotes.
    topup = session.post(f"{base}/compute/credits/topup", json={"amount_usd": 0.5}, timeout=60)
    assert topup.status_code == 200, f"topup: {topup.status_code} {topup.text}"
    topped = topup.json()
    assert topped["credited_micros"] == 500_000, topped
    assert topped["payer"] == account.address.lower(), topped
    balance = requests.get(
        f"{base}/compute/credits/balance", headers={"Authorization": f"Bearer {topped['api_key']}"}, timeout=60
    ).json()
    assert balance["balance_micros"] == topped["balance_micros"], (balance, topped)

    print(
        json.dumps(
            {
                "payer": account.address.lower(),
                "quote_micros": quote,
                "completion_id": completion["id"],
                "completion_tokens": completion["usage"]["completion_tokens"],
                "topup_key_balance_micros": topped["balance_micros"],
                "mpp_completion_id": mpp_paid["id"],
                "mpp_replay_problem": mpp_paid["replay_problem"],
                "replay_reason": replay_reason,
                "expired_reason": expired_reason,
            }
        )
    )


if __name__ == "__main__":
    main()
