"""The dashboard's jobs page on a real job, in Debian's Chromium through Playwright.

Run by the Rust test `dashboard::the_jobs_page_follows_a_real_job` against a grid that ran one
(SGL_DASHBOARD_URL, SGL_API_KEY, SGL_JOB_ID): the page lists it, watching it shows it done with
its slice and accepted attempt, and each output downloads through the page, which checks its
sha256 before offering it. Prints one JSON summary line (the downloaded text) on stdout.
"""

import hashlib
import json
import os
import sys
import traceback

from playwright.sync_api import expect, sync_playwright

BASE = os.environ["SGL_DASHBOARD_URL"]
TIMEOUT_MS = 180_000


def main():
    job = os.environ["SGL_JOB_ID"]
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=os.environ["SGL_CHROMIUM"], args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1000, "height": 800}, accept_downloads=True)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(f"{BASE}/dashboard/")
        page.get_by_label("API key").fill(os.environ["SGL_API_KEY"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/dashboard/account.html")
        page.goto(f"{BASE}/dashboard/jobs.html")
        row = page.locator(f"#jobs tr[data-job-id='{job}']")
        expect(row).to_contain_text("done", timeout=TIMEOUT_MS)
        row.get_by_role("button", name="Watch").click()
        expect(page.locator("#job-state")).to_have_text("done", timeout=TIMEOUT_MS)
        expect(page.locator("#slices tbody")).to_contain_text("accepted")
        expect(page.get_by_role("button", name="Cancel job")).to_be_disabled()
        download_button = page.locator("#results button").first
        expect(download_button).to_contain_text("primes.txt", timeout=TIMEOUT_MS)
        shown_sha = page.locator("#results li code").first.inner_text()
        with page.expect_download() as info:
            download_button.click()
        download = info.value
        name = download.suggested_filename
        path = download.path()
        data = open(path, "rb").read()
        assert hashlib.sha256(data).hexdigest() == shown_sha, "the file is the blob the result names"
        expect(page.locator("#status")).to_contain_text("sha256 checked")
        os.makedirs(os.environ["SGL_SCREENSHOTS"], exist_ok=True)
        page.screenshot(path=os.path.join(os.environ["SGL_SCREENSHOTS"], "dashboard-job.png"))
        browser.close()
    assert not problems, f"script errors: {problems}"
    print(json.dumps({"file": name, "text": data.decode()}))


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
