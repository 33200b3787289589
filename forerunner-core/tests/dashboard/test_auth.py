"""A manager that asks for tokens: the dashboard's sign-in, roles and sign-out.

The manager takes one token of each role. The page asks for a token before it shows
anything; an admin token gets everything, a client token the pages without actions,
a worker token nothing. The tab keeps the token in sessionStorage, sends it only in
the Authorization header, and forgets it on sign-out or on any 401; it never reaches
a URL, localStorage, the page's HTML or the console.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final

import pytest

from forerunner.manager.auth import Tokens

expect = pytest.importorskip(
    "playwright.sync_api", reason="needs Playwright for Python (requirements-dev.txt)"
).expect

if TYPE_CHECKING:
    from conftest import Stack, Ui
    from playwright.sync_api import ConsoleMessage, Locator, Page, Request

ADMIN: Final = "admin-dashboard-token-0123456789"
CLIENT: Final = "client-dashboard-token-0123456789"
WORKER: Final = "worker-dashboard-token-0123456789"
TOKENS: Final = (ADMIN, CLIENT, WORKER)


@pytest.fixture(scope="module")
def manager_options() -> dict[str, Any]:
    return {
        "tokens": Tokens.from_mapping({"admin": [ADMIN], "client": [CLIENT], "worker": [WORKER]}),
        "client_token": CLIENT,
        "worker_token": WORKER,
    }


def sign_in_form(page: Page) -> Locator:
    return page.get_by_role("form", name="Sign in")


def sign_in(page: Page, token: str) -> None:
    form = sign_in_form(page)
    form.get_by_label("Access token").fill(token)
    form.get_by_role("button", name="Sign in").click()


def signed_in(page: Page) -> None:
    """Wait until the pages replaced the sign-in form."""
    expect(sign_in_form(page)).to_have_count(0)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def storage(page: Page, which: str) -> dict[str, str]:
    return dict(json.loads(page.evaluate(f"JSON.stringify({which})")))


def test_without_a_token_the_page_shows_only_the_sign_in_form(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url)

    form = sign_in_form(page)
    expect(form).to_be_visible()
    expect(form.get_by_label("Access token")).to_have_attribute("type", "password")
    expect(form.get_by_label("Access token")).to_be_focused()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    expect(page.get_by_role("navigation")).to_be_hidden()
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    expect(page.get_by_role("banner")).to_contain_text("Signed out")


@pytest.mark.parametrize("width", [1280, 390])
def test_the_sign_in_form_fits_the_width(ui: Ui, stack: Stack, width: int) -> None:
    page = ui.open(stack.url, width=width)
    expect(sign_in_form(page)).to_be_visible()

    assert ui.fits(page), f"the sign-in form scrolls sideways at {width} px"
    ui.screenshot(page, f"sign-in-{width}")


def test_an_admin_token_opens_the_pages_and_its_actions_work(ui: Ui, stack: Stack) -> None:
    # Given a job that failed, and a task that now works
    job = stack.client.submit("flaky", {"case": "admin retry"}, max_attempts=1)
    assert stack.done(job.id) == "failed"
    stack.healed.set()
    try:
        page = ui.open(stack.url + f"#/jobs/{job.id}")
        sent: list[Request] = []

        def record(request: Request) -> None:
            sent.append(request)

        page.on("request", record)

        # When the operator signs in with an admin token
        sign_in(page, ADMIN)

        # Then the page they asked for opens, with every action
        signed_in(page)
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {job.id}")
        expect(page.get_by_role("banner")).to_contain_text("Signed in as admin")
        expect(page.get_by_role("navigation").get_by_role("link", name="Actions")).to_be_visible()

        # And retrying the failed job runs it again until it succeeds
        page.get_by_role("button", name="Retry job").click()
        dialog = page.get_by_role("dialog", name="Retry this job?")
        dialog.get_by_role("button", name="Retry job").click()
        expect(page.get_by_role("status").filter(has_text=f"Job {job.id} is now")).to_be_visible()
        expect(page.get_by_role("region", name="Summary").locator(".badge")).to_have_text(
            "succeeded"
        )
        assert stack.client.get(job.id).state == "succeeded"
    finally:
        stack.healed.clear()

    # And every API call carried the token in its header
    calls = [request for request in sent if "/v1/" in request.url]
    assert any(request.method == "POST" for request in calls)
    unsigned = [
        f"{request.method} {request.url}"
        for request in calls
        if request.headers.get("authorization") != f"Bearer {ADMIN}"
    ]
    assert unsigned == []


def test_a_client_token_shows_the_pages_and_the_role_without_actions(ui: Ui, stack: Stack) -> None:
    failed = stack.client.submit("flaky", {"case": "client"}, max_attempts=1).id
    assert stack.done(failed) == "failed"
    queued = stack.client.submit("report", {"case": "client"}).id
    page = ui.open(stack.url, width=390)

    sign_in(page, CLIENT)

    signed_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    expect(page.get_by_role("banner")).to_contain_text("Signed in as client")
    expect(page.get_by_role("region", name="Manager")).to_contain_text("signed in as client")
    expect(page.get_by_role("navigation").get_by_role("link", name="Actions")).to_be_hidden()
    assert ui.fits(page), "the signed-in header scrolls sideways at 390 px"
    ui.screenshot(page, "overview-client-390", full_page=False)
    for job_id in (failed, queued):
        ui.goto(page, stack.url + f"#/jobs/{job_id}")
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Job {job_id}")
        expect(page.get_by_role("region", name="Timeline")).to_be_visible()
        expect(page.get_by_role("button", name="Retry job")).to_have_count(0)
        expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    ui.goto(page, stack.url + "#/actions")
    expect(page.get_by_role("main")).to_contain_text("You are signed in with a client token")
    expect(page.get_by_role("main").get_by_role("button")).to_have_count(0)


def test_a_wrong_token_is_refused_and_the_tab_stays_signed_out(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url)

    sign_in(page, "not-a-token-of-this-manager")

    form = sign_in_form(page)
    expect(form.get_by_role("alert")).to_have_text(re.compile("did not accept this token"))
    expect(form.get_by_label("Access token")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("navigation")).to_be_hidden()
    assert storage(page, "sessionStorage") == {}
    ui.goto(page, stack.url)
    expect(sign_in_form(page)).to_be_visible()


def test_an_empty_token_is_refused_before_asking(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url)
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))

    sign_in_form(page).get_by_role("button", name="Sign in").click()

    expect(sign_in_form(page).get_by_role("alert")).to_have_text("Enter an access token.")
    assert sent == []


def test_a_worker_token_cannot_open_the_dashboard(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url)

    sign_in(page, WORKER)

    form = sign_in_form(page)
    expect(form.get_by_role("alert")).to_contain_text("A worker token cannot open the dashboard")
    expect(page.get_by_role("navigation")).to_be_hidden()
    assert storage(page, "sessionStorage") == {}


def test_sign_out_forgets_the_token(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url)
    sign_in(page, ADMIN)
    signed_in(page)
    assert ADMIN in storage(page, "sessionStorage").values()

    page.get_by_role("button", name="Sign out").click()

    expect(sign_in_form(page).get_by_role("status")).to_have_text(re.compile("You signed out"))
    expect(page.get_by_role("navigation")).to_be_hidden()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    assert storage(page, "sessionStorage") == {}
    ui.goto(page, stack.url)
    expect(sign_in_form(page)).to_be_visible()


def test_a_reload_keeps_the_session_but_another_tab_does_not_share_it(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url + "#/workers")
    sign_in(page, ADMIN)
    signed_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Workers")

    page.reload()
    page.wait_for_selector("body[data-ready]")

    expect(page.get_by_role("heading", level=1)).to_have_text("Workers")
    expect(page.get_by_role("banner")).to_contain_text("Signed in as admin")
    expect(sign_in_form(page)).to_have_count(0)
    # sessionStorage belongs to one tab: a second tab, even of the same browser, signs in
    # on its own, and closing the first one ends its session.
    other = page.context.new_page()
    ui.goto(other, stack.url)
    expect(sign_in_form(other)).to_be_visible()


def test_a_refused_token_sends_the_tab_back_to_the_sign_in_form(ui: Ui, stack: Stack) -> None:
    page = ui.open(stack.url)
    sign_in(page, ADMIN)
    signed_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

    # When the manager stops accepting the tab's token (as after a rotation), the next
    # refresh's call is answered 401
    page.evaluate(
        "for (const key of Object.keys(sessionStorage))"
        " sessionStorage.setItem(key, 'revoked-token-0123456789')"
    )

    alert = sign_in_form(page).get_by_role("alert")
    expect(alert).to_contain_text("The manager no longer accepts this tab's token")
    expect(alert).to_contain_text("401 unauthorized")
    expect(page.get_by_role("navigation")).to_be_hidden()
    assert storage(page, "sessionStorage") == {}


def test_a_token_never_reaches_a_url_local_storage_the_html_or_the_console(
    ui: Ui, stack: Stack
) -> None:
    page = ui.open(stack.url)
    urls: list[str] = []
    console: list[str] = []

    def log(message: ConsoleMessage) -> None:
        console.append(message.text)

    page.on("request", lambda request: urls.append(request.url))
    page.on("framenavigated", lambda frame: urls.append(frame.url))
    page.on("console", log)

    sign_in(page, CLIENT)
    signed_in(page)
    for link in ("Jobs", "Workers", "Overview"):
        page.get_by_role("navigation").get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(link)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "not-a-token-of-this-manager")
    expect(sign_in_form(page).get_by_role("alert")).to_be_visible()
    sign_in(page, ADMIN)
    signed_in(page)
    page.reload()
    page.wait_for_selector("body[data-ready]")
    signed_in(page)

    places = {
        "a URL": "\n".join([*urls, page.url]),
        "localStorage": json.dumps(storage(page, "localStorage")),
        "the page's HTML": page.content(),
        "the console": "\n".join(console),
        "a cookie": json.dumps(page.context.cookies()),
    }
    for secret in (*TOKENS, "not-a-token-of-this-manager"):
        leaked = [place for place, text in places.items() if secret in text]
        assert leaked == [], f"a token reached {', '.join(leaked)}"
    assert urls, "the page made no requests"
