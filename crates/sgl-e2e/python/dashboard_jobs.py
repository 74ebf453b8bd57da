"""The dashboard's jobs page on real jobs, in Debian's Chromium through Playwright.

Run by the Rust test `dashboard::the_jobs_page_submits_and_follows_real_jobs` against a grid
that ran one (SGL_DASHBOARD_URL, SGL_API_KEY, SGL_JOB_ID): the page lists it, watching it shows
it done with its slice and accepted attempt, and each output downloads through the page, which
checks its sha256 before offering it. Then the page's bundle code is held to the CLI's bytes
(SGL_BUNDLE_VECTOR), and the page submits three jobs and watches each finish: an unsigned
bundle folder it hashes and signs itself (SGL_UNSIGNED_BUNDLE), a folder the CLI signed
(SGL_SIGNED_BUNDLE), and a training job from its form (SGL_TRAIN_DATA). Prints one JSON summary
line on stdout.
"""

import hashlib
import json
import os

from dashboard_support import BASE, launch, run, sign_in
from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 180_000


def vector(page):
    """bundle.js and plans.js against sgl-cloud's bytes: each case's manifest and signature."""
    with open(os.environ["SGL_BUNDLE_VECTOR"]) as file:
        vec = json.load(file)
    result = page.evaluate(
        """async (v) => {
            const bundle = await import('/dashboard/js/bundle.js');
            const plans = await import('/dashboard/js/plans.js');
            const hex = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));
            const text = (t) => new TextEncoder().encode(t);
            const key = await bundle.keyFromSeed(hex(v.requester_seed_hex));
            const module = new Uint8Array(await (await fetch('/dashboard/wasm/mnist-train.wasm')).arrayBuffer());
            const out = { requester: key.requester, cases: [] };
            for (const c of v.cases) {
                const files = new Map(Object.entries(c.files).map(([name, t]) => [name, text(t)]));
                const plan = c.kind === 'train' ? plans.train(c.form, files.get('mnist.csv'), module)
                    : c.kind === 'image' ? plans.image(c.form, 'pipeline.json', files)
                    : c.kind === 'render' ? plans.render(c.form, 'scene.blend', files.get('scene.blend'))
                    : plans.directory(files);
                const made = await bundle.hashed(plan);
                const signed = await bundle.sign(key, made.bytes);
                out.cases.push({ kind: c.kind, manifest: new TextDecoder().decode(made.bytes), hash: made.hash, signature: signed.signature });
            }
            let refused = null;
            try { plans.render({ ...v.cases[2].form, bands: 2, resolution: '' }, 's.blend', text('x')); } catch (e) { refused = e.field; }
            out.refused = refused;
            try { plans.frames('1-2-3'); } catch (e) { out.framesRefused = e.field; }
            const huge = { ...v.cases[2].form, resolution: '65536x65536', samples: 16777216, bands: 1 };
            try { plans.render(huge, 's.blend', text('x')); } catch (e) { out.hugeRefused = e.field; }
            return out;
        }""",
        vec,
    )
    assert result["requester"] == vec["requester"], result["requester"]
    for case, got in zip(vec["cases"], result["cases"]):
        assert got["manifest"] == case["manifest"], f"{case['kind']}: the page planned\n{got['manifest']}\nthe CLI\n{case['manifest']}"
        assert got["hash"] == case["bundle_hash"], case["kind"]
        assert got["signature"] == case["signature"], f"{case['kind']}: another signature"
    assert len(result["cases"]) == 4, result
    assert result["refused"] == "bands", "bands without a resolution name their field"
    assert result.get("framesRefused") == "frames", "1-2-3 is no frame range, as sgl-cloud render says"
    assert result.get("hugeRefused") == "samples", "work beyond 2^53 is refused, not rounded"


def submit_and_wait(page, kind, fill):
    """Chooses `kind`, lets `fill` set its fields, submits, and waits for the watched job to end done."""
    page.get_by_label("What to run").select_option(kind)
    fill()
    page.get_by_role("button", name="Sign and submit").click()
    expect(page.locator("#submitted")).to_contain_text("submitted", timeout=TIMEOUT_MS)
    job = page.locator("#submitted").inner_text().split()[1]
    expect(page.locator("#job-id")).to_have_text(job, timeout=TIMEOUT_MS)
    expect(page.locator("#job-state")).to_have_text("done", timeout=TIMEOUT_MS)
    return job


def submit(page, summary):
    page.goto(f"{BASE}/dashboard/jobs.html")
    expect(page.locator("#requester")).not_to_contain_text("…")
    summary["requester"] = page.locator("#requester").inner_text()
    # A folder without manifest.sig is hashed and signed here; files must be listed first.
    summary["page_signed_job"] = submit_and_wait(
        page, "bundle", lambda: page.get_by_label("Bundle folder").set_input_files(os.environ["SGL_UNSIGNED_BUNDLE"])
    )
    summary["cli_signed_job"] = submit_and_wait(
        page, "bundle", lambda: page.get_by_label("Bundle folder").set_input_files(os.environ["SGL_SIGNED_BUNDLE"])
    )

    def train():
        page.get_by_label("Data (CSV").set_input_files(os.environ["SGL_TRAIN_DATA"])
        page.get_by_label("Epochs").fill("2")
        page.get_by_label("Hidden units").fill("8")

    summary["train_job"] = submit_and_wait(page, "train", train)
    expect(page.locator("#slices tbody tr")).to_have_count(2)
    expect(page.locator(f"#jobs tr[data-job-id='{summary['train_job']}']")).to_contain_text("done")
    page.locator("#submit-form").screenshot(path=os.path.join(os.environ["SGL_SCREENSHOTS"], "dashboard-submit.png"))
    # A bad choice is named, and nothing is submitted.
    page.get_by_label("Hidden units").fill("5000")
    page.get_by_role("button", name="Sign and submit").click()
    expect(page.locator("#status")).to_contain_text("hidden must be a whole number from 1 to 1024")
    expect(page.get_by_label("Hidden units")).to_be_focused()
    # A job two operators must agree on cannot start on this one-node grid: cancelled from the page.
    page.get_by_label("Hidden units").fill("8")
    page.get_by_label("Nodes per slice").fill("2")
    page.get_by_role("button", name="Sign and submit").click()
    expect(page.locator("#submitted")).to_contain_text("× 2", timeout=TIMEOUT_MS)
    waiting = page.locator("#submitted").inner_text().split()[1]
    expect(page.locator("#job-id")).to_have_text(waiting)
    expect(page.locator("#job-state")).to_have_text("queued", timeout=TIMEOUT_MS)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#job-state")).to_have_text("cancelled", timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text(f"Job {waiting} cancelled.")
    summary["cancelled_job"] = waiting


def main():
    job = os.environ["SGL_JOB_ID"]
    problems = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        context = browser.new_context(viewport={"width": 1000, "height": 800}, accept_downloads=True)
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        sign_in(page, os.environ["SGL_API_KEY"])
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
        summary = {"file": name, "text": data.decode()}
        vector(page)
        submit(page, summary)
        browser.close()
    return summary, problems


if __name__ == "__main__":
    run(main)
