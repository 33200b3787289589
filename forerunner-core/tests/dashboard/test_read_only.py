"""A manager started read-only: the dashboard shows everything and offers no action.

The manager refuses cancel, retry, bulk retry and purge with 403 ``read_only`` whatever
the page does; these tests check the page does not offer them in the first place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

expect = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)"
).expect

if TYPE_CHECKING:
    from conftest import Stack, Ui


@pytest.fixture(scope="module")
def manager_options() -> dict[str, Any]:
    return {"read_only": True}


def test_read_only_manager_gets_no_action_controls(ui: Ui, stack: Stack) -> None:
    seeded = stack.seed()
    page = ui.open(stack.url)
    expect(page.get_by_role("banner")).to_contain_text("read-only")
    expect(page.get_by_role("navigation").get_by_role("link", name="Actions")).to_be_hidden()
    expect(page.get_by_role("region", name="Manager")).to_contain_text("read-only")
    ui.screenshot(page, "overview-read-only-1280")

    for job_id in (seeded.failed, seeded.queued, seeded.running):
        ui.goto(page, stack.url + f"#/jobs/{job_id}")
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {job_id}")
        expect(page.get_by_role("region", name="Timeline")).to_be_visible()
        expect(page.get_by_role("button", name="Retry job")).to_have_count(0)
        expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)

    ui.goto(page, stack.url + "#/actions")
    expect(page.get_by_role("main")).to_contain_text("This manager runs read-only")
    expect(page.get_by_role("main").get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("main").get_by_role("textbox")).to_have_count(0)
