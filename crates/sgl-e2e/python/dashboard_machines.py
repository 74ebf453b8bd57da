"""The dashboard's machines page renting a real machine, in Debian's Chromium through Playwright.

Run by the Rust test `dashboard::the_machines_page_rents_a_real_machine` against `sgl-grid up
--nodes 0` selling local machines (SGL_DASHBOARD_URL, SGL_API_KEY; SGL_SSH_KEY is a private
key, its .pub beside it): the page provisions a machine for 30 h with the public key pasted in,
shows it active with its SSH command, and `ssh` with that command runs a command in it; then
the page extends it by an hour (the countdown moves up by an hour), resizes it to the larger
plan and destroys it. Prints one JSON summary line on stdout.
"""

import os
import re
import shlex
import subprocess

from dashboard_support import BASE, launch, run, sign_in
from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 120_000


def seconds_left(row):
    """The row's countdown ("2 h 59 min 58 s") in seconds."""
    text = row.locator("td[data-expires]").inner_text()
    h, m, s = (int(n) for n in re.match(r"(\d+) h (\d+) min (\d+) s", text).groups())
    return h * 3600 + m * 60 + s


def main():
    key = os.environ["SGL_SSH_KEY"]
    summary = {}
    problems = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda dialog: dialog.accept())
        sign_in(page, os.environ["SGL_API_KEY"])
        page.goto(f"{BASE}/dashboard/machines.html")
        expect(page.locator("#live")).to_have_text("live", timeout=TIMEOUT_MS)
        expect(page.locator("#plan option[value='local:1c-512mb']")).to_have_count(1, timeout=TIMEOUT_MS)
        page.get_by_label("Plan").select_option("local:1c-512mb")
        page.get_by_label("Region").select_option("local")
        page.get_by_label("Prepaid hours").fill("30")
        expect(page.locator("#quote")).to_contain_text("$0.15 for 30 h")
        page.get_by_label("Label").fill("from-the-browser")
        page.get_by_label("SSH public key").fill(open(f"{key}.pub").read().strip())
        page.get_by_role("button", name="Provision").click()
        row = page.locator("#machines tbody tr", has_text="from-the-browser")
        expect(row.locator("td").nth(2)).to_have_text("active", timeout=TIMEOUT_MS)
        summary["id"] = row.get_attribute("data-machine-id")
        command = row.locator("td").nth(4).inner_text()
        summary["ssh_command"] = command
        left = seconds_left(row)
        assert 107_000 < left <= 108_000, f"about 30 h left, not {left} s"
        # The command the page shows logs in (with the key, which the page never had).
        args = shlex.split(command)
        assert args[0] == "ssh", command
        ssh = ["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
               "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", *args[1:], "echo in-the-machine; hostname"]
        out = subprocess.run(ssh, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, f"ssh: {out.stderr}"
        summary["ssh_output"] = [line for line in out.stdout.splitlines() if line]
        page.screenshot(path=os.path.join(os.environ["SGL_SCREENSHOTS"], "dashboard-machines.png"))

        row.get_by_role("button", name="Extend 1 h").click()
        expect(page.locator("#status")).to_contain_text("Extended")
        # From "29 h 59 min …" to "30 h 59 min …": an hour more, counted down live.
        expect(row.locator("td[data-expires]")).to_have_text(re.compile(r"^30 h 5\d min"), timeout=TIMEOUT_MS)
        summary["left_after_extend"] = seconds_left(row)
        row.get_by_label(f"New plan for {summary['id']}").select_option("local:2c-1gb")
        row.get_by_role("button", name="Resize").click()
        expect(row.locator("td").nth(1)).to_contain_text("local:2c-1gb", timeout=TIMEOUT_MS)
        row.get_by_role("button", name="Destroy").click()
        expect(row.locator("td").nth(2)).to_have_text("destroyed", timeout=TIMEOUT_MS)
        expect(row.get_by_role("button", name="Destroy")).to_be_disabled()
        browser.close()
    return summary, problems


if __name__ == "__main__":
    run(main)
