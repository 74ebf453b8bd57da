"""Rent a machine with the stock Python `x402` client and nothing but an EVM key.

Run by the Rust test `machines` with SGL_E2E_BASE_URL (the grid), SGL_E2E_PAYER_KEY (a hex
private key the test funded with test USDC) and SGL_E2E_SSH_KEY (an OpenSSH public key line).
Asserts, then prints one JSON summary line on stdout:

1. an unpaid provision is answered 402 with a v2 PAYMENT-REQUIRED header quoting the prepaid time;
2. `wrapRequestsWithPayment` pays it and the answer is the pending machine with a
   `management_api_key` (shown once) and a PAYMENT-RESPONSE naming this payer;
3. once the machine runs, the MPP client `pympp` pays a one-hour extension (`use_credits:
   false`, the management key in X-API-Key) through the 402's `WWW-Authenticate: Payment`
   challenge, and `expires_at_ms` moves by exactly an hour.
"""

import asyncio
import base64
import json
import os
import time

import requests
from eth_account import Account
from x402 import x402ClientSync
from x402.http.clients.requests import wrapRequestsWithPayment
from x402.mechanisms.evm.exact import register_exact_evm_client
from mpp import Receipt
from mpp.client import Mpp
from mpp.methods.evm import client as mpp_evm


def wait_running(base: str, key: str, machine_id: str) -> dict:
    for _ in range(300):
        machine = requests.get(f"{base}/compute/instances/{machine_id}", headers={"X-API-Key": key}, timeout=30).json()
        if machine["state"] in ("active", "expiring"):
            return machine
        assert machine["end_reason"] is None, machine
        time.sleep(0.2)
    raise AssertionError(f"{machine_id} never ran")


async def extend_with_mpp(account, base: str, key: str, machine_id: str, requirement: dict) -> dict:
    method = mpp_evm.charge(
        currency=requirement["asset"],
        account=account,
        chain_id=int(requirement["network"].split(":")[1]),
        decimals=6,
        authorization={"name": requirement["extra"]["name"], "version": requirement["extra"]["version"]},
    )
    url = f"{base}/compute/instances/{machine_id}/extend"
    async with Mpp(methods=[method]) as mpp:
        response = await mpp.fetch(
            url, method="POST", json={"extend_hours": 1, "use_credits": False}, headers={"X-API-Key": key}, timeout=120
        )
    assert response.status_code == 200, f"mpp: {response.status_code} {response.text}"
    receipt = Receipt.from_payment_receipt(response.headers["payment-receipt"])
    assert receipt.status == "success" and receipt.method == "evm", receipt
    return response.json()


def main() -> None:
    base = os.environ["SGL_E2E_BASE_URL"].rstrip("/")
    account = Account.from_key(os.environ["SGL_E2E_PAYER_KEY"])
    body = {
        "plan": "local:1c-512mb",
        "region": "local",
        "prepaid_hours": 1,
        "label": "paid by x402",
        "ssh_public_key": os.environ["SGL_E2E_SSH_KEY"],
    }
    url = f"{base}/compute/provision"
    unpaid = requests.post(url, json=body, timeout=60)
    assert unpaid.status_code == 402, (unpaid.status_code, unpaid.text)
    required = json.loads(base64.b64decode(unpaid.headers["PAYMENT-REQUIRED"]))
    quote = int(required["accepts"][0]["amount"])

    client = x402ClientSync()
    register_exact_evm_client(client, account)
    session = wrapRequestsWithPayment(requests.Session(), client)
    paid = session.post(url, json=body, timeout=120)
    assert paid.status_code == 200, (paid.status_code, paid.text)
    machine = paid.json()
    settle = json.loads(base64.b64decode(paid.headers["PAYMENT-RESPONSE"]))
    assert settle["success"] is True, settle
    assert settle["payer"].lower() == account.address.lower(), settle
    assert machine["state"] == "pending", machine
    assert machine["management_api_key"].startswith("x402c_"), machine
    key = machine["management_api_key"]
    running = wait_running(base, key, machine["id"])
    extended = asyncio.run(extend_with_mpp(account, base, key, machine["id"], required["accepts"][0]))
    assert extended["expires_at_ms"] == running["expires_at_ms"] + 3_600_000, (running, extended)
    print(json.dumps({
        "extended_paid_micros": extended["paid_micros"],
        "payer": account.address.lower(),
        "quote_micros": quote,
        "id": machine["id"],
        "paid_micros": machine["paid_micros"],
        "management_api_key": machine["management_api_key"],
    }))


if __name__ == "__main__":
    main()
