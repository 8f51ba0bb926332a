#!/usr/bin/env python3
"""acerelay's panel in a real headless Chromium (Playwright), against a running
`acerelay serve`. Started by PanelBrowserTests.swift, which owns the processes:
this script asks it for what only it can do by printing `REQUEST join|leave|restart`
and waits for `DONE` on stdin. Prints `SCREENSHOT <path>` per screenshot and `PASS`
at the end; any failed check exits non-zero with the reason on stderr."""

import argparse
import json
import os
import sys
import time

CHROMIUM = "/usr/bin/chromium"


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def prerequisites():
    if not os.access(CHROMIUM, os.X_OK):
        print(f"FAIL: no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` (CI does, in .ci/run)",
              file=sys.stderr, flush=True)
        sys.exit(2)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        print("FAIL: the Python package playwright is missing: `pip install playwright` "
              "(never `playwright install`: the test uses Debian's Chromium)", file=sys.stderr, flush=True)
        sys.exit(2)


def request(what):
    print(f"REQUEST {what}", flush=True)
    answer = sys.stdin.readline().strip()
    if answer != "DONE":
        fail(f"the Swift side answered {answer!r} to {what}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--panel", required=True, help="the panel's URL, e.g. http://127.0.0.1:8000/panel")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--content-id", required=True, help="the content the Swift side plays")
    parser.add_argument("--screenshots", required=True, help="directory for the screenshots")
    args = parser.parse_args()
    prerequisites()
    from playwright.sync_api import sync_playwright, expect

    expect.set_options(timeout=20_000)
    console_errors = []   # (phase, text, url)
    phase = {"name": "load"}
    snapshot_polls = []

    def shot(page, name, full_page=False):
        path = os.path.join(args.screenshots, name)
        page.screenshot(path=path, full_page=full_page)
        print(f"SCREENSHOT {path}", flush=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page = context.new_page()
        page.on("console", lambda m: console_errors.append((phase["name"], m.text, m.location.get("url", "")))
                if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append((phase["name"], f"uncaught: {e}", "")))
        page.on("request", lambda r: snapshot_polls.append(r.url) if "/panel/snapshot" in r.url else None)

        page.goto(args.panel)
        tid = lambda name: page.get_by_test_id(name)

        # Real data: the simulator's engine, the Swift side's player, its stream's numbers.
        expect(tid("kpi-engines-total")).to_have_text("1")
        expect(tid("kpi-engines-healthy")).to_have_text("1")
        expect(tid("engine-row")).to_have_count(1)
        expect(tid("engine-row")).to_have_attribute("data-health", "healthy")
        expect(tid("kpi-players")).to_have_text("1")
        expect(tid("kpi-streams")).to_have_text("1")
        expect(tid("kpi-vpn")).to_have_text("down")
        expect(tid("vpn-card")).to_contain_text("could not connect")
        expect(tid("vpn-forwarded-port")).to_have_text("–")
        row = page.locator(f'[data-testid="stream-row"][data-content-id="{args.content_id}"]')
        expect(row).to_have_attribute("data-players", "1")
        expect(page.locator("#connection")).to_have_text("live")
        page.wait_for_function("Number(document.querySelector('[data-testid=kpi-egress-mbps]').textContent) > 0",
                               timeout=20_000)
        page.wait_for_function("Number(document.querySelector('[data-testid=stream-chart]').dataset.points) >= 3",
                               timeout=20_000)
        # The engine's stats reach the row (peers), and the chart has drawn something.
        page.wait_for_function(
            "(() => { const c = document.querySelector('[data-testid=stream-chart]');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " for (let i = 0; i < d.length; i += 4) if (d[i] > 150 || d[i + 1] > 150) return true; return false; })()",
            timeout=10_000)
        polls_before = len(snapshot_polls)

        # A player joins and leaves: the page follows through SSE, without a reload.
        phase["name"] = "join"
        request("join")
        expect(tid("kpi-players")).to_have_text("2")
        expect(row).to_have_attribute("data-players", "2")
        page.wait_for_timeout(1500)
        shot(page, "panel.png")
        shot(page, "panel-full.png", full_page=True)
        request("leave")
        expect(tid("kpi-players")).to_have_text("1")
        expect(row).to_have_attribute("data-players", "1")
        if len(snapshot_polls) != polls_before:
            fail(f"the page polled {len(snapshot_polls) - polls_before} times while SSE was up: {snapshot_polls[polls_before:]}")
        expect(page.locator("#connection")).to_have_text("live")

        # A wrong key: the page says the key was refused (the 403 is expected on the console).
        phase["name"] = "wrong-key"
        tid("api-key-input").fill("not-the-key")
        page.get_by_role("button", name="Keep").click()
        tid("loop-threshold-input").fill("1234")
        tid("loop-save").click()
        expect(page.locator("#message")).to_contain_text("403")

        # The right key, kept in localStorage: the setting is saved.
        phase["name"] = "save"
        tid("api-key-input").fill(args.api_key)
        tid("api-key-input").press("Enter")
        expect(page.locator("#message")).to_contain_text("kept")
        tid("loop-threshold-input").fill("1234")
        tid("loop-save").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#message")).to_contain_text("saved")
        saved = page.evaluate("fetch('/api/v1/stream-loop-detection/config').then(r => r.json())")
        if saved.get("threshold_seconds") != 1234:
            fail(f"the API did not take the threshold: {json.dumps(saved)}")

        # A restart of the binary: the open page reconnects by itself; after a reload the setting is still there.
        phase["name"] = "restart"
        request("restart")
        expect(page.locator("#connection")).to_have_text("live", timeout=30_000)
        expect(tid("kpi-engines-total")).to_have_text("1")
        phase["name"] = "after-restart"
        page.reload()
        expect(tid("loop-threshold-input")).to_have_value("1234")
        expect(tid("api-key-input")).to_have_value(args.api_key)
        expect(tid("kpi-engines-healthy")).to_have_text("1")
        expect(page.locator("#connection")).to_have_text("live")

        # A phone-sized screen: the page still lays out (no horizontal overflow of the page itself).
        phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2).new_page()
        phone.on("pageerror", lambda e: console_errors.append(("phone", f"uncaught: {e}", "")))
        phone.goto(args.panel)
        expect(phone.get_by_test_id("kpi-engines-total")).to_have_text("1")
        overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        if overflow > 2:
            fail(f"the page is {overflow}px wider than a phone's screen")
        shot(phone, "panel-phone.png")
        browser.close()

    # Expected failures only: the channel list's 404 (no channels in this build), the deliberate 403,
    # and connection errors while the binary restarts. Anything else on the console fails the test.
    def expected(entry):
        phase_name, text, url = entry
        if "Failed to load resource" in text and "/channels" in url:
            return True
        if phase_name == "wrong-key" and "403" in text:
            return True
        if phase_name == "restart" and ("ERR_CONNECTION_REFUSED" in text or "Failed to load resource" in text
                                        or "EventSource" in text):
            return True
        return False

    unexpected = [e for e in console_errors if not expected(e)]
    if unexpected:
        fail("console errors: " + "; ".join(f"[{p}] {t} {u}" for p, t, u in unexpected))
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
