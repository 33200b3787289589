"""Every page of the dashboard in a real browser, against a real manager and worker.

Covers: each page renders at 1280 and 390 px without page-level sideways scrolling and
without browser errors (and is screenshotted into artifacts/screenshots); the overview's
counts, queue, workers and chart; the jobs filters and the cursor pages; the job page's
fields, error, traceback, progress and timeline; the workers page; labelled controls and
landmarks; and keyboard-only use, from the skip link to a confirmed cancel.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)"
).expect

if TYPE_CHECKING:
    from conftest import Seeded, Stack, Ui
    from playwright.sync_api import Locator, Page

WIDTHS = (1280, 390)


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Seeded:
    return stack.seed()


def job_link(page: Page | Locator, job_id: str) -> Locator:
    return page.locator(f'a[href="#/jobs/{job_id}"]')


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_renders_at_the_width_without_sideways_scrolling(
    ui: Ui, stack: Stack, seeded: Seeded, width: int
) -> None:
    pages = {
        "overview": ("#/", "Overview"),
        "jobs": ("#/jobs", "Jobs"),
        "job-detail": (f"#/jobs/{seeded.failed}", f"Job {seeded.failed}"),
        "job-running": (f"#/jobs/{seeded.running}", f"Job {seeded.running}"),
        "workers": ("#/workers", "Workers"),
        "actions": ("#/actions", "Actions"),
    }
    page = ui.open(stack.url, width=width)
    for name, (route, heading) in pages.items():
        ui.goto(page, stack.url + route)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        if name == "overview":
            expect(page.get_by_role("img", name=re.compile("Throughput"))).to_be_visible()
        if name in ("jobs", "workers"):
            # The list arrives after the heading: wait for it before the screenshot.
            expect(job_link(page, seeded.running).first).to_be_visible()
        if name.startswith("job-"):
            expect(page.get_by_role("list").filter(has_text="submitted")).to_be_visible()
        assert ui.fits(page), f"the {name} page scrolls sideways at {width} px"
        ui.screenshot(page, f"{name}-{width}")


def test_overview_shows_counts_queue_depth_workers_and_throughput(
    ui: Ui, stack: Stack, seeded: Seeded
) -> None:
    page = ui.open(stack.url)

    counts = page.get_by_role("table", name="Jobs by type and state")
    expect(counts.get_by_role("row", name=re.compile(r"^flaky"))).to_contain_text("1")
    expect(counts.get_by_role("link", name="1 flaky job failed")).to_have_attribute(
        "href", "#/jobs?type=flaky&state=failed"
    )
    queue = page.get_by_role("table", name="Queue depth")
    expect(queue.get_by_role("row", name=re.compile(r"^report"))).to_contain_text("1")
    at_a_glance = page.get_by_role("region", name="At a glance")
    expect(at_a_glance).to_contain_text("Workers connected1")
    expect(at_a_glance).to_contain_text("Oldest waiting")
    expect(page.locator(".chart-summary")).to_have_text(
        re.compile(r"^Last 60 minutes: \d+ submitted")
    )

    page.locator("summary", has_text="Numbers per minute").click()
    expect(page.get_by_role("table", name="Numbers per minute")).to_be_visible()


def test_jobs_filter_by_state_type_and_text(ui: Ui, stack: Stack, seeded: Seeded) -> None:
    page = ui.open(stack.url + "#/jobs")
    table = page.get_by_role("table", name="Jobs")
    expect(job_link(page, seeded.queued)).to_be_visible()

    page.get_by_label("State").select_option("failed")

    expect(page).to_have_url(re.compile(r"#/jobs\?state=failed$"))
    expect(job_link(page, seeded.failed)).to_be_visible()
    expect(job_link(page, seeded.queued)).to_have_count(0)
    expect(table.locator(".badge").filter(has_not_text="failed")).to_have_count(0)

    page.get_by_role("button", name="Clear filters").click()
    page.get_by_label("Type").fill("report")
    page.get_by_role("button", name="Apply filters").click()
    expect(job_link(page, seeded.queued)).to_be_visible()
    expect(job_link(page, seeded.failed)).to_have_count(0)

    page.get_by_role("button", name="Clear filters").click()
    page.get_by_label("Id or key contains").fill(seeded.scheduled[-12:])
    page.get_by_label("Id or key contains").press("Enter")
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(job_link(page, seeded.scheduled)).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="1 job with id or key")).to_be_attached()

    page.get_by_label("Id or key contains").fill("echo-1")
    page.get_by_label("Id or key contains").press("Enter")
    expect(job_link(page, seeded.succeeded[1])).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(1)


def test_jobs_page_older_and_newer_follow_the_cursor(ui: Ui, stack: Stack) -> None:
    ids = [job.id for job in stack.client.submit_many([{"type": "report"}] * 30)]
    newest_first = ids[::-1]
    page = ui.open(stack.url + "#/jobs?type=report&limit=25")
    rows = page.get_by_role("table", name="Jobs").locator("tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text(newest_first[0][-4:])

    page.get_by_role("button", name="Older").click()

    expect(rows.first.get_by_role("link")).to_have_attribute("href", f"#/jobs/{newest_first[25]}")
    expect(page.get_by_role("button", name="Older")).to_have_count(0)
    expect(page.locator(".results-summary")).to_be_focused()

    page.get_by_role("button", name="Newer").click()

    expect(rows).to_have_count(25)
    expect(rows.first.get_by_role("link")).to_have_attribute("href", f"#/jobs/{newest_first[0]}")


def test_job_page_shows_fields_error_traceback_and_timeline(
    ui: Ui, stack: Stack, seeded: Seeded
) -> None:
    page = ui.open(stack.url + "#/jobs?state=failed")

    job_link(page, seeded.failed).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {seeded.failed}")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    summary = page.get_by_role("region", name="Summary")
    expect(summary).to_contain_text("Typeflaky")
    expect(summary).to_contain_text("Attempt1 of 1")
    error = page.get_by_role("region", name="Error")
    expect(error).to_contain_text("LookupError: no record for {'order': 7} yet")
    traceback = page.get_by_role("region", name="Traceback")
    expect(traceback).to_contain_text("Traceback (most recent call last)")
    expect(traceback).to_contain_text('raise LookupError(f"no record for {data!r} yet")')
    expect(page.get_by_role("region", name="Job data")).to_contain_text('"order": 7')
    timeline = page.get_by_role("region", name="Timeline")
    expect(timeline.get_by_role("listitem")).to_have_count(3)
    expect(timeline.get_by_role("listitem").last).to_contain_text("failed")
    expect(page.get_by_role("button", name="Retry job")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)


def test_running_job_shows_progress_and_can_be_cancelled_not_retried(
    ui: Ui, stack: Stack, seeded: Seeded
) -> None:
    page = ui.open(stack.url + f"#/jobs/{seeded.running}")

    expect(page.get_by_role("region", name="Summary").locator(".badge")).to_have_text("running")
    expect(page.get_by_label("Done")).to_have_attribute("value", "30")
    expect(page.get_by_role("button", name="Cancel job")).to_be_visible()
    expect(page.get_by_role("button", name="Retry job")).to_have_count(0)


def test_workers_page_lists_the_worker_with_its_tasks_and_running_job(
    ui: Ui, stack: Stack, seeded: Seeded
) -> None:
    page = ui.open(stack.url + "#/workers")

    row = page.get_by_role("table", name="Workers").get_by_role("row", name=re.compile(r"\S+-\d+-"))
    expect(row).to_have_count(1)
    expect(row.get_by_role("list", name=re.compile("^Tasks of"))).to_contain_text("echo")
    expect(row).to_contain_text("pid")
    expect(row).to_contain_text(re.compile(r"\d+(\.\d)? s ago"))
    running = row.get_by_role("list", name=re.compile("^Jobs running on"))
    expect(job_link(running, seeded.running)).to_be_visible()

    job_link(running, seeded.running).click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {seeded.running}")


def test_landmarks_and_every_control_have_names(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url)
    expect(page.get_by_role("banner")).to_be_visible()
    expect(page.get_by_role("navigation", name="Dashboard")).to_be_visible()
    expect(page.get_by_role("main")).to_be_visible()
    expect(page.get_by_role("link", name="Skip to content")).to_be_attached()

    ui.goto(page, stack.url + "#/jobs")
    search = page.get_by_role("search", name="Filter jobs")
    for label in ("State", "Type", "Id or key contains", "Per page"):
        expect(search.get_by_label(label)).to_be_visible()

    ui.goto(page, stack.url + "#/actions")
    retry = page.get_by_role("region", name="Retry failed or cancelled jobs")
    for label in ("Type", "State", "At most"):
        expect(retry.get_by_label(label)).to_be_visible()
    purge = page.get_by_role("region", name="Purge finished jobs")
    for label in ("Finished more than", "Unit", "At most"):
        expect(purge.get_by_label(label)).to_be_visible()
    expect(page.get_by_role("region", name="One job").get_by_label("Job id")).to_be_visible()

    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button, a[href]')]
             .filter((node) => node.offsetParent !== null)
             .filter((node) => !(node.labels && node.labels.length)
                     && !node.getAttribute('aria-label') && !node.textContent.trim())
             .map((node) => node.outerHTML)"""
    )
    assert unnamed == [], "controls without a name"


#: The focused element's name, roughly as assistive technology computes it.
FOCUSED_NAME = """() => {
    const node = document.activeElement;
    if (!node) return "";
    if (node.getAttribute("aria-label")) return node.getAttribute("aria-label");
    if (node.labels && node.labels.length) return node.labels[0].textContent.trim();
    return node.textContent.trim();
}"""


def focus_by_tab(page: Page, name: str, *, limit: int = 40) -> None:
    """Press Tab until the focused element is named ``name``; fail after ``limit`` presses."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED_NAME) == name:
            return
    pytest.fail(f"{limit} presses of Tab never reached {name!r}")


def test_keyboard_alone_navigates_and_cancels_a_job_through_the_dialog(
    ui: Ui, stack: Stack
) -> None:
    job = stack.client.submit("report", {"by": "keyboard"})
    page = ui.open(stack.url)

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    focus_by_tab(page, "Jobs")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Jobs")).to_be_focused()

    focus_by_tab(page, "Id or key contains")
    page.keyboard.type(job.id)
    page.keyboard.press("Enter")
    expect(page.get_by_role("table", name="Jobs").locator("tbody tr")).to_have_count(1)
    focus_by_tab(page, f"Job {job.id}")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {job.id}")

    focus_by_tab(page, "Cancel job")
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Cancel this job?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Keep job")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel job")).to_be_focused()
    assert stack.client.get(job.id).state == "queued"

    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Cancel job")).to_be_focused()
    page.keyboard.press("Enter")

    expect(
        page.get_by_role("status").filter(has_text=f"Job {job.id} is now cancelled")
    ).to_be_visible()
    expect(page.get_by_role("region", name="Summary").locator(".badge")).to_have_text("cancelled")
    assert stack.client.get(job.id).state == "cancelled"
