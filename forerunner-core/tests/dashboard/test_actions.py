"""The dashboard's actions, in a real browser, against a real manager and worker.

Covers: retrying a failed job from its page runs it again until it succeeds; cancelling
a queued job; declining the confirmation changes nothing; bulk retry of a type's failed
jobs; purging finished jobs through the confirmation dialog; and a refused action shows
the manager's own error message. Every destructive action goes through the <dialog>.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from forerunner.errors import JobNotFound

expect = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)"
).expect

if TYPE_CHECKING:
    from conftest import Stack, Ui
    from playwright.sync_api import Locator, Page


def confirm(page: Page, title: str, button: str) -> None:
    """Answer the open confirmation dialog named ``title`` with ``button``."""
    dialog = page.get_by_role("dialog", name=title)
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=button).click()
    expect(dialog).to_be_hidden()


def badge(page: Page) -> Locator:
    return page.get_by_role("region", name="Summary").locator(".badge")


def test_retry_runs_a_failed_job_again_until_it_succeeds(ui: Ui, stack: Stack) -> None:
    # Given a job that failed, and a task that now works
    job = stack.client.submit("flaky", {"case": "retry"}, max_attempts=1)
    assert stack.done(job.id) == "failed"
    stack.healed.set()
    try:
        page = ui.open(stack.url + f"#/jobs/{job.id}")
        expect(page.get_by_role("region", name="Error")).to_contain_text("LookupError")

        # When the operator retries it and confirms
        page.get_by_role("button", name="Retry job").click()
        confirm(page, "Retry this job?", "Retry job")

        # Then it runs again and succeeds, and the page follows it there
        expect(page.get_by_role("status").filter(has_text=f"Job {job.id} is now")).to_be_visible()
        expect(badge(page)).to_have_text("succeeded")
        expect(page.get_by_role("region", name="Job result")).to_contain_text('"healed"')
        expect(page.get_by_role("region", name="Error")).to_be_hidden()
        expect(page.get_by_role("button", name="Retry job")).to_have_count(0)
        assert stack.client.get(job.id).state == "succeeded"
    finally:
        stack.healed.clear()


def test_cancel_stops_a_queued_job(ui: Ui, stack: Stack) -> None:
    job = stack.client.submit("report", {"case": "cancel"})
    page = ui.open(stack.url + f"#/jobs/{job.id}")
    expect(badge(page)).to_have_text("queued")

    page.get_by_role("button", name="Cancel job").click()
    confirm(page, "Cancel this job?", "Cancel job")

    expect(badge(page)).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Retry job")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    assert stack.client.get(job.id).state == "cancelled"


def test_declining_the_confirmation_changes_nothing(ui: Ui, stack: Stack) -> None:
    job = stack.client.submit("report", {"case": "decline"})
    page = ui.open(stack.url + f"#/jobs/{job.id}")

    page.get_by_role("button", name="Cancel job").click()
    confirm(page, "Cancel this job?", "Keep job")
    page.get_by_role("button", name="Cancel job").click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")

    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.get_by_role("button", name="Cancel job")).to_be_focused()
    assert stack.client.get(job.id).state == "queued"


def test_bulk_retry_retries_every_failed_job_of_the_type(ui: Ui, stack: Stack) -> None:
    # Given three failed jobs of one type, one of another, and a task that now works
    failed = [stack.client.submit("flaky_bulk", {"n": n}, max_attempts=1).id for n in range(3)]
    other = stack.client.submit("flaky", {"case": "not this type"}, max_attempts=1).id
    assert {stack.done(job_id) for job_id in [*failed, other]} == {"failed"}
    stack.healed.set()
    try:
        page = ui.open(stack.url + "#/actions")
        form = page.get_by_role("region", name="Retry failed or cancelled jobs")
        expect(form.get_by_label("Type").locator("option", has_text="flaky_bulk")).to_be_attached()

        # When the operator retries the failed jobs of that type
        form.get_by_label("Type").select_option("flaky_bulk")
        form.get_by_label("State").select_option("failed")
        form.get_by_role("button", name="Retry jobs…").click()
        dialog = page.get_by_role("dialog", name="Retry failed jobs of type flaky_bulk?")
        expect(dialog).to_contain_text("Up to 1,000 failed jobs of type flaky_bulk")
        ui.screenshot(page, "confirm-dialog-1280", full_page=False)
        confirm(page, "Retry failed jobs of type flaky_bulk?", "Retry jobs")

        # Then those three run again and succeed; the other type stays failed
        expect(form.get_by_role("status")).to_have_text(re.compile("^Retried 3 jobs."))
        assert [stack.done(job_id) for job_id in failed] == ["succeeded"] * 3
        assert stack.client.get(other).state == "failed"
    finally:
        stack.healed.clear()


def test_purge_deletes_finished_jobs_after_confirmation(ui: Ui, stack: Stack) -> None:
    # Given finished jobs and one still waiting
    finished = [stack.client.submit("echo", {"purge": n}).id for n in range(2)]
    assert [stack.done(job_id) for job_id in finished] == ["succeeded"] * 2
    waiting = stack.client.submit("report", {"case": "purge keeps me"}).id
    page = ui.open(stack.url + "#/actions", width=390)
    form = page.get_by_role("region", name="Purge finished jobs")

    # When the operator purges what finished more than 0 minutes ago, and confirms
    form.get_by_label("Finished more than").fill("0")
    form.get_by_label("Unit").select_option("minutes")
    form.get_by_role("button", name="Delete finished jobs…").click()
    dialog = page.get_by_role("dialog", name="Delete finished jobs?")
    expect(dialog).to_contain_text("This cannot be undone.")
    assert ui.fits(page), "the dialog makes the page scroll sideways at 390 px"
    ui.screenshot(page, "confirm-dialog-390", full_page=False)
    confirm(page, "Delete finished jobs?", "Delete jobs")

    # Then they are gone, and the waiting job is not
    expect(form.get_by_role("status")).to_have_text(re.compile(r"^Deleted \d+ finished jobs\."))
    for job_id in finished:
        with pytest.raises(JobNotFound):
            stack.client.get(job_id)
    assert stack.client.get(waiting).state == "queued"


def test_a_refused_action_shows_the_managers_message(ui: Ui, stack: Stack) -> None:
    job = stack.client.submit("echo", {"case": "already done"})
    assert stack.done(job.id) == "succeeded"
    page = ui.open(stack.url + "#/actions")
    one = page.get_by_role("region", name="One job")

    one.get_by_label("Job id").fill(job.id)
    one.get_by_role("button", name="Cancel job…").click()
    confirm(page, "Cancel this job?", "Cancel job")

    refusal = one.get_by_role("alert")
    expect(refusal).to_contain_text("The manager refused")
    expect(refusal).to_contain_text("[409 invalid_transition]")
    assert stack.client.get(job.id).state == "succeeded"


def test_an_invalid_number_is_refused_before_asking(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url + "#/actions")
    form = page.get_by_role("region", name="Retry failed or cancelled jobs")

    form.get_by_label("At most").fill("0")
    form.get_by_role("button", name="Retry jobs…").click()

    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(form.get_by_role("alert")).to_have_text(
        "At most must be a whole number from 1 to 10000."
    )
    expect(form.get_by_label("At most")).to_be_focused()
    expect(form.get_by_label("At most")).to_have_attribute("aria-invalid", "true")
