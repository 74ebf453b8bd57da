"""What the dashboard's browser tests share: Debian's Chromium (SGL_CHROMIUM) through
Playwright, a page signed in with an API key, and a script's end: one JSON summary line on
stdout, or the traceback and exit status 1."""

import json
import os
import sys
import traceback

BASE = os.environ["SGL_DASHBOARD_URL"]


def launch(playwright):
    return playwright.chromium.launch(executable_path=os.environ["SGL_CHROMIUM"], args=["--no-sandbox"])


def sign_in(page, api_key):
    """Signs `page` in with `api_key` on the sign-in page and waits for the account page."""
    page.goto(f"{BASE}/dashboard/")
    page.get_by_label("API key").fill(api_key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url("**/dashboard/account.html")


def run(main):
    """Runs `main`, which returns its summary and the page errors it saw; prints the summary."""
    try:
        summary, problems = main()
        assert not problems, f"script errors: {problems}"
        print(json.dumps(summary))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
