"""The dashboard in a real browser: Debian's Chromium (SGL_CHROMIUM) driven by Playwright.

Run by the Rust test `dashboard` against a live `sgl-grid up` (SGL_DASHBOARD_URL) with its API
key, admin token, an operator wallet, a node of that wallet that never attested, and the served
model. Each step asserts on what the page shows and saves a screenshot (docs/screenshots/,
1000 px wide). Every page must load without a Content-Security-Policy violation or a script
error. Prints one JSON summary line on stdout; a failed assertion exits non-zero.
"""

import json
import os
import re
import sys
import traceback

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["SGL_DASHBOARD_URL"]
SHOTS = os.environ["SGL_SCREENSHOTS"]
TIMEOUT_MS = 180_000


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, f"dashboard-{name}.png"), full_page=False)


def micros(text):
    return round(float(text.strip().lstrip("$")) * 1_000_000)


def check_headers(page):
    response = page.goto(f"{BASE}/dashboard/")
    headers = response.headers
    csp = headers.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert "unsafe-inline" not in csp, csp
    assert headers.get("x-content-type-options") == "nosniff", headers
    assert "set-cookie" not in headers, "the dashboard sets no cookie"


def sign_in(page):
    # Keyboard first: the skip link, then the API key field.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip", "the first stop is the skip link"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "api-key", page.evaluate("document.activeElement.outerHTML")
    page.get_by_label("API key").fill(os.environ["SGL_API_KEY"])
    page.get_by_label("Operator wallet").fill(os.environ["SGL_WALLET"])
    page.get_by_label("Admin token").fill(os.environ["SGL_ADMIN_TOKEN"])
    shot(page, "sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/account.html")
    expect(page.locator("#balance")).to_have_text(re.compile(r"^\$\d"), timeout=TIMEOUT_MS)
    # Refused: a key the grid does not know.
    other = page.context.new_page()
    other.goto(f"{BASE}/dashboard/")
    other.get_by_label("API key").fill("x402c_not-a-key")
    other.get_by_role("button", name="Sign in").click()
    expect(other.locator("#status")).to_contain_text("does not know this API key")
    other.close()


def no_wallet(page):
    """Without window.ethereum the page says a top-up cannot be paid here, and offers none."""
    expect(page.locator("#topup-note")).to_contain_text("No browser wallet was found")
    expect(page.get_by_role("button", name="Top up with a browser wallet")).to_be_disabled()


WALLET = """
window.ethereum = {
  request: async ({ method, params }) => {
    if (method === "eth_requestAccounts") return [%s];
    if (method === "eth_signTypedData_v4") return await window.sglTestSignTypedData(params[1]);
    if (method === "personal_sign") return await window.sglTestPersonalSign(params[0], params[1]);
    throw new Error(`unsupported ${method}`);
  },
};
"""


def sign_typed_data(typed_json):
    from eth_account import Account

    typed = json.loads(typed_json)
    for field in ("value", "validAfter", "validBefore"):
        typed["message"][field] = int(typed["message"][field])
    signature = Account.sign_typed_data(os.environ["SGL_BROWSER_WALLET_KEY"], full_message=typed).signature.hex()
    return signature if signature.startswith("0x") else f"0x{signature}"


def personal_sign(message_hex, address):
    from eth_account import Account
    from eth_account.messages import encode_defunct

    assert address.lower() == os.environ["SGL_BROWSER_WALLET"].lower(), address
    signed = Account.sign_message(encode_defunct(hexstr=message_hex), os.environ["SGL_BROWSER_WALLET_KEY"])
    signature = signed.signature.hex()
    return signature if signature.startswith("0x") else f"0x{signature}"


def wallet_context(browser):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.expose_function("sglTestSignTypedData", sign_typed_data)
    context.expose_function("sglTestPersonalSign", personal_sign)
    context.add_init_script(WALLET % json.dumps(os.environ["SGL_BROWSER_WALLET"]))
    return context


def wallet_sign_in(browser, summary):
    """The browser wallet signs in instead of an API key: the page shows the wallet account's
    keys, the sign-in's key among them with its expiry; signing out revokes that key."""
    context = wallet_context(browser)
    page = context.new_page()
    page.goto(f"{BASE}/dashboard/")
    page.get_by_role("button", name="Use my browser wallet").click()
    page.wait_for_url("**/dashboard/account.html", timeout=TIMEOUT_MS)
    key_id = page.evaluate("sessionStorage.getItem('sgl.signInKeyId')")
    api_key = page.evaluate("sessionStorage.getItem('sgl.apiKey')")
    row = page.locator(f"#keys tr[data-key-id='{key_id}']")
    expect(row).to_contain_text("expires", timeout=TIMEOUT_MS)
    expect(row.locator("input")).to_have_value("wallet sign-in")
    row.scroll_into_view_if_needed()
    shot(page, "wallet-sign-in")
    balance = lambda: page.request.get(f"{BASE}/compute/credits/balance", headers={"Authorization": f"Bearer {api_key}"})
    assert balance().status == 200, "the sign-in's key works"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{BASE}/dashboard/")
    assert balance().status == 401, "signing out revoked the sign-in's key"
    summary["wallet_sign_in_key_id"] = int(key_id)
    context.close()


def wallet_topup(browser, summary):
    """A browser wallet (a test double signing in Python) pays a top-up through x402."""
    context = wallet_context(browser)
    page = context.new_page()
    page.goto(f"{BASE}/dashboard/")
    page.get_by_label("API key").fill(os.environ["SGL_API_KEY"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/account.html")
    page.get_by_label("Top-up amount (USD)").fill("1.50")
    page.get_by_role("button", name="Top up with a browser wallet").click()
    expect(page.locator("#status")).to_contain_text("$1.50 credited", timeout=TIMEOUT_MS)
    status = page.locator("#status").inner_text()
    assert os.environ["SGL_BROWSER_WALLET"].lower() in status.lower(), status
    summary["topped_up_micros"] = 1_500_000
    # The live view catches up: the key's balance is what the grid answered the payment with.
    holds = re.search(r"now holds (\$[0-9]+\.[0-9]+)", status).group(1)
    expect(page.locator("#balance")).to_have_text(holds, timeout=TIMEOUT_MS)
    page.locator("#status").scroll_into_view_if_needed()
    shot(page, "topup")
    context.close()


def keys(page, summary):
    page.get_by_label("Label", exact=True).fill("browser")
    page.get_by_label("Credits to move to it (USD)").fill("0.25")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_contain_text("x402c_")
    row = page.locator("#keys tbody tr").filter(has=page.locator("input[value='browser']"))
    expect(row).to_have_count(1, timeout=TIMEOUT_MS)
    key_id = int(row.get_attribute("data-key-id"))
    summary["created_key_id"] = key_id
    summary["credits_moved_to_key_micros"] = 250_000
    expect(row.locator("td.num")).to_have_text("$0.25")
    # Move a cent back to the signed-in key, relabel, then revoke.
    page.get_by_label("From key").select_option(str(key_id))
    page.get_by_label("To key").select_option(index=0)
    page.get_by_label("Amount (USD)", exact=True).fill("0.01")
    page.get_by_role("button", name="Move credits").click()
    expect(page.locator(f"#keys tr[data-key-id='{key_id}'] td.num")).to_have_text("$0.24", timeout=TIMEOUT_MS)
    summary["credits_moved_to_key_micros"] = 240_000
    label = page.get_by_label(f"Label of key {key_id}")
    label.fill("browser-relabelled")
    page.locator(f"#keys tr[data-key-id='{key_id}']").get_by_role("button", name="Save label").click()
    expect(page.locator("#status")).to_contain_text(f"Key {key_id} relabelled")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#keys tr[data-key-id='{key_id}']").get_by_role("button", name="Revoke").click()
    expect(page.locator(f"#keys tr[data-key-id='{key_id}'] td.state-bad")).to_have_text("revoked", timeout=TIMEOUT_MS)


def chat(page, summary):
    page.goto(f"{BASE}/dashboard/chat.html")
    page.get_by_label("Model").select_option(os.environ["SGL_MODEL"])
    page.get_by_label("Prompt").fill("Count from one to five.")
    page.get_by_label("Most tokens in the answer").fill("16")
    page.get_by_role("button", name="Send sealed").click()
    badge = page.locator("#verified")
    expect(badge).to_have_text("verified", timeout=TIMEOUT_MS)
    expect(badge).to_have_class("badge verified")
    answer = page.locator("#answer").inner_text()
    assert answer.strip(), "the verified answer has text"
    proof = page.locator("#proof")
    terms = proof.locator("dt").all_inner_texts()
    values = proof.locator("dd").all_inner_texts()
    facts = dict(zip(terms, values))
    assert int(facts["Chunks verified"]) >= 1, facts
    summary["chat_job_id"] = facts["Job"]
    summary["chat_node_id"] = facts["Node"]
    summary["chat_chunks"] = int(facts["Chunks verified"])
    shot(page, "chat")


def usage(page, summary):
    page.goto(f"{BASE}/dashboard/account.html")
    billed = page.locator("#usage-table td.usage-billed").first
    expect(billed).to_have_text(re.compile(r"^\$0\.0*[1-9]"), timeout=TIMEOUT_MS)
    expect(page.locator("#usage-table tbody tr").first).to_contain_text(os.environ["SGL_MODEL"])
    summary["usage_billed_micros"] = micros(billed.inner_text())
    expect(page.locator("#usage-chart svg rect").first).to_be_visible()
    shot(page, "account")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "account-phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the account page fits a phone's width, not {width}px"
    page.set_viewport_size({"width": 1000, "height": 800})


def vector(page, summary):
    """seal.js against sgl-protocol's bytes: the same sealed request, the stream opened."""
    with open(os.environ["SGL_SEAL_VECTOR"]) as file:
        vec = json.load(file)
    result = page.evaluate(
        """async (v) => {
            const seal = await import('/dashboard/js/seal.js');
            const b58 = await import('/dashboard/js/base58.js');
            const hex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
            const fixed = (k) => ({ secret: hex(k.secret_hex), public: b58.decode(k.public_b58) });
            const node = await seal.verifyReservation(v.reservation);
            const r = v.request;
            const { enc, response } = await seal.sealRequest(v.node.x25519_public_b58, new TextEncoder().encode(r.plaintext),
                { response: fixed(r.response), ephemeral: fixed(r.ephemeral), nonce: hex(r.nonce_hex) });
            const verifier = new seal.StreamVerifier(node, response, v.stream.request_nonce);
            const texts = []; let end = null;
            for (const event of v.stream.events) { const o = await verifier.open(event); texts.push(o.text); end = o.end ?? end; }
            const tampered = structuredClone(v.stream.events[0]);
            tampered.ct = tampered.ct.slice(0, -1) + (tampered.ct.endsWith('1') ? '2' : '1');
            let refused = null;
            try { await new seal.StreamVerifier(node, response, v.stream.request_nonce).open(tampered); } catch (e) { refused = e.step; }
            const reordered = new seal.StreamVerifier(node, response, v.stream.request_nonce);
            let outOfOrder = null;
            try { await reordered.open(v.stream.events[1]); } catch (e) { outOfOrder = e.step; }
            const badBind = structuredClone(v.reservation); badBind.key_version = 2;
            let keybind = null;
            try { await seal.verifyReservation(badBind); } catch (e) { keybind = e.step; }
            return { enc, texts, end, refused, outOfOrder, keybind, zeros: b58.encode(new Uint8Array([0, 0, 1, 2])) };
        }""",
        vec,
    )
    assert result["enc"] == vec["request"]["enc"], f"seal.js sealed other bytes: {result['enc']} != {vec['request']['enc']}"
    assert result["texts"] == vec["stream"]["texts"], result["texts"]
    assert result["end"]["usage"] == vec["stream"]["usage"], result["end"]
    # A flipped ciphertext byte no longer matches the signed proof of execution or signature.
    assert result["refused"] in ("proof", "signature"), result
    assert result["outOfOrder"] == "order", result
    assert result["keybind"] == "keybind", result
    assert result["zeros"] == vec["b58_of_zeros"], result
    summary["vector"] = "matched"


def operator(page, summary):
    node = os.environ["SGL_UNATTESTED_NODE"]
    page.goto(f"{BASE}/dashboard/operator.html?wallet={os.environ['SGL_WALLET']}")
    row = page.locator(f"#nodes tr[data-node-id='{node}']")
    expect(row.locator("li[data-reason='not_attested']")).to_contain_text("run `sgl attest`", timeout=TIMEOUT_MS)
    serving = page.locator("#nodes tbody tr").filter(has=page.locator("span.state-ok", has_text="gets work"))
    expect(serving).to_have_count(1)
    expect(serving.locator(f"li[data-standing='{os.environ['SGL_MODEL']}']")).to_contain_text("ranked 1 of 1")
    expect(page.locator("#stake")).to_contain_text("SGL")
    earned = page.locator("#earnings-chart p")
    expect(earned).not_to_have_attribute("data-earned", "0", timeout=TIMEOUT_MS)
    expect(page.locator("#earnings-chart svg rect").first).to_be_visible()
    summary["operator_earned_micros"] = int(earned.get_attribute("data-earned"))
    summary["unattested_reasons"] = row.locator("li").evaluate_all("items => items.map(i => i.dataset.reason)")
    shot(page, "operator")


def admin(page, summary):
    page.goto(f"{BASE}/dashboard/admin.html")
    row = page.locator(f"#capacity tr[data-model='{os.environ['SGL_MODEL']}']")
    expect(row).to_have_count(1, timeout=TIMEOUT_MS)
    expect(row.locator("td").nth(1)).to_have_text("1")
    expect(page.locator("#ledger")).to_have_text("sound")
    expect(page.locator("#latency")).not_to_have_text("…")
    summary["admin_capacity_nodes"] = int(row.locator("td").nth(1).inner_text())
    shot(page, "admin")
    # A wrong token is refused and the page says so rather than showing stale figures.
    page.evaluate("sessionStorage.setItem('sgl.adminToken', 'not-the-token-at-all')")
    page.reload()
    expect(page.locator("#live")).to_contain_text("reconnecting", timeout=TIMEOUT_MS)


def requester(page, summary):
    """The jobs and machines pages load over the same API: this grid has no job and sells no
    machine (`up --no-machines`), and each page says so."""
    page.goto(f"{BASE}/dashboard/jobs.html")
    expect(page.locator("#jobs tbody")).to_contain_text("No job yet.", timeout=TIMEOUT_MS)
    shot(page, "jobs")
    page.goto(f"{BASE}/dashboard/machines.html")
    expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
    expect(page.locator("#machines tbody")).to_contain_text("No machine yet.")
    expect(page.locator("#status")).to_contain_text("sells no machines")
    summary["requester_pages"] = "empty, as the grid is"


def main():
    summary = {}
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ["SGL_CHROMIUM"], args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1000, "height": 800})
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and "401" not in m.text and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        check_headers(page)
        sign_in(page)
        no_wallet(page)
        keys(page, summary)
        chat(page, summary)
        usage(page, summary)
        vector(page, summary)
        operator(page, summary)
        requester(page, summary)
        csp = [p for p in problems if "Content Security Policy" in p]
        assert not csp, f"CSP violations: {csp}"
        admin(page, summary)
        wallet_topup(browser, summary)
        wallet_sign_in(browser, summary)
        browser.close()
    unexpected = [p for p in problems if "401" not in p and "Failed to load resource" not in p]
    assert not unexpected, f"script errors: {unexpected}"
    print(json.dumps(summary))


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
