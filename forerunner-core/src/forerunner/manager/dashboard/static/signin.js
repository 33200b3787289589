// The sign-in form, shown instead of the pages when the manager asks for a token and
// this tab holds none that it accepts.
//
// A token is tried with GET v1/session before it is kept, so a wrong one, or a worker's,
// is never stored. The form is built here, never in index.html, and its submission only
// ever runs this script: without it (or with an old browser) there is no form whose
// native GET could put the token in a URL, and the page's Content-Security-Policy
// (form-action 'none') would stop one anyway. The field is emptied once the token is
// kept, so it does not stay in the page.

import { api, token } from "./api.js";
import { h, replaceChildren, uniqueId } from "./dom.js";

export const WORKER_REFUSED =
  "A worker token cannot open the dashboard: it may only poll for jobs. Sign in with a client or admin token.";

const NOT_ACCEPTED = "The manager did not accept this token. Check it and try again.";

function messageNode(message) {
  if (!message) return null;
  if (message.error) return h("p", { class: "outcome error", role: "alert" }, message.error);
  return h("p", { class: "outcome ok", role: "status" }, message.status);
}

// `message` is { error } or { status } to show above the field, or null;
// `onSignedIn(session)` opens the pages once a client or admin token was kept.
export function showSignIn({ main, message, onSignedIn }) {
  const inputId = uniqueId("field");
  const hintId = `${inputId}-hint`;
  const input = h("input", {
    id: inputId,
    type: "password",
    name: "token",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    "aria-describedby": hintId,
  });
  const out = h("div", { class: "outcome-box" }, messageNode(message));
  const button = h("button", { type: "submit", class: "button primary" }, "Sign in");
  const form = h(
    "form",
    { class: "panel signin-form", "aria-labelledby": "signin-title", novalidate: true },
    out,
    h(
      "div",
      { class: "field" },
      h("label", { for: inputId }, "Access token"),
      input,
      h(
        "p",
        { class: "hint", id: hintId },
        "A client token shows the pages; an admin token also allows cancel, retry and purge. This tab keeps it until you sign out or close the tab.",
      ),
    ),
    h("div", { class: "buttons" }, button),
  );

  const refuse = (text) => {
    replaceChildren(out, messageNode({ error: text }));
    input.setAttribute("aria-invalid", "true");
    input.focus();
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = input.value.trim();
    if (!candidate) {
      refuse("Enter an access token.");
      return;
    }
    button.disabled = true;
    let session = null;
    try {
      session = await api.session({ bearer: candidate });
    } catch (error) {
      refuse(error.status === 401 ? NOT_ACCEPTED : error.describe ? error.describe() : String(error));
      return;
    } finally {
      button.disabled = false;
    }
    if (session.auth && session.role === "worker") {
      refuse(WORKER_REFUSED);
    } else if (session.auth && !session.role) {
      refuse(NOT_ACCEPTED);
    } else {
      if (session.auth) token.set(candidate);
      input.value = "";
      onSignedIn(session);
    }
  });

  replaceChildren(
    main,
    h(
      "div",
      { class: "signin" },
      h("h1", { id: "signin-title", tabindex: "-1" }, "Sign in"),
      h("p", { class: "lede" }, "This manager asks for an access token before it shows its jobs."),
      form,
    ),
  );
  input.focus();
}
