// The dashboard's shell: hash routes, the shared refresh loop, the header, and the live
// regions. Pages live in pages/*.js; each exports mount(ctx) and returns a controller:
//   { title, refresh(overview) -> Promise, update?(params) -> boolean }
//
// Navigation is by "#/..." hashes, so the server serves one page at one path, and every
// request the page makes is relative to it: the dashboard works under any path prefix.
//
// A manager that asks for tokens (GET v1/session says so) first gets the sign-in form
// (signin.js); the pages appear once the tab holds a client or admin token, and any 401
// later sends the tab back to the form. A client token sees what an admin sees but no
// action, as in read-only mode.

import { api, onUnauthorized, token } from "./api.js";
import { closeDialog, dialogOpen } from "./dialog.js";
import { formatTime, h, replaceChildren } from "./dom.js";
import * as actionsPage from "./pages/actions.js";
import * as jobPage from "./pages/job.js";
import * as jobsPage from "./pages/jobs.js";
import * as overviewPage from "./pages/overview.js";
import * as workersPage from "./pages/workers.js";
import { showSignIn, WORKER_REFUSED } from "./signin.js";

// Seconds between two refreshes of the current page (and of the overview behind it).
const REFRESH_MS = 3000;

const ROUTES = [
  { pattern: /^\/$/, page: overviewPage, nav: "overview" },
  { pattern: /^\/jobs$/, page: jobsPage, nav: "jobs" },
  { pattern: /^\/jobs\/([^/]+)$/, page: jobPage, nav: "jobs" },
  { pattern: /^\/workers$/, page: workersPage, nav: "workers" },
  { pattern: /^\/actions$/, page: actionsPage, nav: "actions" },
];

const state = {
  // GET v1/session's answer: { auth, role, read_only }; null until it came.
  session: null,
  // Whether the pages show (rather than the sign-in form) and refresh.
  signedIn: false,
  overview: null,
  readOnly: false,
  connected: null,
  current: null, // { route, controller, abort, key }
  timer: null,
  ticking: false,
  again: false,
};

function parseHash() {
  const raw = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const [path, search = ""] = raw.split("?");
  return { path: path || "/", params: new URLSearchParams(search) };
}

function announce(text) {
  const node = document.getElementById("announcer");
  // Clearing first makes a repeated message be read again.
  node.textContent = "";
  window.setTimeout(() => {
    node.textContent = text;
  }, 50);
}

function showAlert(text) {
  const node = document.getElementById("alerts");
  replaceChildren(
    node,
    text
      ? h(
          "div",
          { class: "alert" },
          h("p", {}, text),
          h("button", { type: "button", class: "button small", onclick: () => showAlert("") }, "Dismiss"),
        )
      : null,
  );
}

function setConnection(connected, detail) {
  const wrap = document.getElementById("connection");
  const text = document.getElementById("connection-text");
  wrap.classList.toggle("offline", !connected);
  if (connected) {
    const mode = readOnlyReason() === "manager" ? " · read-only" : "";
    const version = state.overview?.version ? `v${state.overview.version} · ` : "";
    text.textContent = `${version}updated ${formatTime(new Date().toISOString()).slice(11)}${mode}`;
  } else {
    text.textContent = "Cannot reach the manager; retrying";
  }
  if (state.connected !== null && state.connected !== connected) {
    if (connected) {
      showAlert("");
      announce("Connection to the manager restored.");
    } else showAlert(detail);
  } else if (state.connected === null && !connected) showAlert(detail);
  state.connected = connected;
}

// Why the dashboard offers no action: "manager" (it runs --read-only), "role" (this
// tab's token is a client's), or null when it offers them.
function readOnlyReason() {
  if (state.overview?.read_only || state.session?.read_only) return "manager";
  if (state.session?.auth && state.session.role !== "admin") return "role";
  return null;
}

function applyReadOnly() {
  const readOnly = readOnlyReason() !== null;
  const changed = state.readOnly !== readOnly;
  state.readOnly = readOnly;
  document.body.classList.toggle("read-only", readOnly);
  for (const node of document.querySelectorAll("[data-requires-write]")) node.hidden = readOnly;
  return changed;
}

async function loadOverview() {
  try {
    const overview = await api.overview();
    // Signed out while the answer was on its way: the header says so, and stays.
    if (!state.signedIn) return false;
    state.overview = overview;
    const changed = applyReadOnly();
    setConnection(true);
    return changed;
  } catch (error) {
    // A 401 has already sent the tab to the sign-in form.
    if (error.status !== 401 && state.signedIn) setConnection(false, error.describe ? error.describe() : String(error));
    return false;
  }
}

function context(route, params, abort) {
  return {
    params,
    signal: abort.signal,
    main: document.getElementById("main"),
    overview: () => state.overview,
    readOnly: () => state.readOnly,
    readOnlyReason,
    session: () => state.session,
    announce,
    alert: showAlert,
    navigate: (hash) => {
      location.hash = hash;
    },
    refreshNow: () => tick(),
  };
}

function highlightNav(nav) {
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function notFound(main, path) {
  replaceChildren(
    main,
    h("h1", { tabindex: "-1" }, "Page not found"),
    h("p", {}, `The dashboard has no page at #${path}. `, h("a", { href: "#/" }, "Go to the overview"), "."),
  );
  return { title: "Page not found", refresh: async () => {} };
}

async function route({ moveFocus, force = false }) {
  const { path, params } = parseHash();
  let match = null;
  let found = null;
  for (const candidate of ROUTES) {
    match = candidate.pattern.exec(path);
    if (match) {
      found = candidate;
      break;
    }
  }
  const current = state.current;
  // Same page, new parameters (a filter, a page of jobs): the page updates in place,
  // so the control the operator is using keeps its focus.
  const samePage = found && current && current.route === found && current.key === path;
  if (!force && samePage && current.controller.update) {
    if (current.controller.update(params)) return;
  }
  if (current) current.abort.abort();
  const main = document.getElementById("main");
  const abort = new AbortController();
  let controller;
  if (!found) {
    highlightNav(null);
    controller = notFound(main, path);
  } else {
    highlightNav(found.nav);
    const ctx = context(found, params, abort);
    if (match[1] !== undefined) ctx.id = decodeURIComponent(match[1]);
    replaceChildren(main);
    controller = found.page.mount(ctx);
  }
  state.current = { route: found, controller, abort, key: path };
  document.title = `${controller.title} · forerunner`;
  if (moveFocus) {
    const heading = main.querySelector("h1");
    if (heading) heading.focus();
    window.scrollTo(0, 0);
  }
  await refreshPage(state.current);
}

async function refreshPage(current) {
  if (!current || current.abort.signal.aborted) return;
  try {
    await current.controller.refresh(state.overview);
  } catch (error) {
    if (error.name === "AbortError" || current.abort.signal.aborted || error.status === 401) return;
    if (error.status === 0) setConnection(false, error.describe());
    else showAlert(error.describe ? error.describe() : String(error));
  }
  if (!current.abort.signal.aborted) {
    document.title = `${current.controller.title} · forerunner`;
  }
}

async function tick() {
  if (!state.signedIn) return;
  // A refresh asked for during another (after an action) runs right after it, so the
  // page shows the action's effect without waiting for the next period.
  if (state.ticking) {
    state.again = true;
    return;
  }
  state.ticking = true;
  window.clearTimeout(state.timer);
  try {
    // A dialog waiting for an answer keeps the page as the operator saw it.
    if (!dialogOpen()) {
      const readOnlyChanged = await loadOverview();
      if (readOnlyChanged && state.current) await route({ moveFocus: false, force: true });
      else await refreshPage(state.current);
    }
  } finally {
    state.ticking = false;
    if (state.again) {
      state.again = false;
      tick();
    } else schedule();
  }
}

function schedule() {
  window.clearTimeout(state.timer);
  if (!state.signedIn || document.visibilityState === "hidden") return;
  state.timer = window.setTimeout(tick, REFRESH_MS);
}

function showAccount() {
  const signedIn = state.signedIn && Boolean(state.session?.auth);
  document.getElementById("account").hidden = !signedIn;
  document.getElementById("nav").hidden = !state.signedIn;
  const role = state.session?.role;
  document.getElementById("account-role").textContent = signedIn
    ? `Signed in as ${role}${role === "admin" ? "" : " (view only)"}`
    : "";
}

// The pages, for a session that may open them; `moveFocus` after a sign-in.
async function enter(session, { moveFocus }) {
  state.session = session;
  state.signedIn = true;
  state.overview = null;
  state.connected = null;
  document.getElementById("connection").classList.remove("signed-out");
  applyReadOnly();
  showAccount();
  await loadOverview();
  if (!state.signedIn) return;
  // Rendered pages are inert until the first route, so a test or a person never sees
  // action buttons before the read-only mode is known.
  await route({ moveFocus, force: true });
  schedule();
}

// Back to the sign-in form, forgetting the token and stopping every refresh.
function leave(message) {
  token.clear();
  state.signedIn = false;
  window.clearTimeout(state.timer);
  if (state.current) state.current.abort.abort();
  state.current = null;
  state.overview = null;
  closeDialog();
  showAlert("");
  showAccount();
  const wrap = document.getElementById("connection");
  wrap.classList.remove("offline");
  wrap.classList.add("signed-out");
  document.getElementById("connection-text").textContent = "Signed out";
  highlightNav(null);
  document.title = "Sign in · forerunner";
  showSignIn({
    main: document.getElementById("main"),
    message,
    onSignedIn: (session) => enter(session, { moveFocus: true }),
  });
}

// What GET v1/session says of this tab's token: the pages, or the sign-in form and why.
async function begin() {
  const held = token.get();
  let session;
  try {
    session = await api.session({ bearer: held ?? "" });
  } catch (error) {
    if (error.status === 401) {
      leave(held ? { error: "The manager no longer accepts this tab's token. Sign in again." } : null);
      return;
    }
    // No answer (a manager too old to have v1/session, or none at all): show the pages
    // as before; a 401 from any later call still brings the sign-in form.
    session = { auth: false, role: null, read_only: false };
  }
  if (session.auth && session.role === "worker") {
    leave({ error: WORKER_REFUSED });
  } else if (session.auth && !session.role) {
    leave(held ? { error: "The manager no longer accepts this tab's token. Sign in again." } : null);
  } else {
    await enter(session, { moveFocus: false });
  }
}

async function start() {
  document.getElementById("skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("main").focus();
  });
  window.addEventListener("hashchange", () => {
    if (location.hash === "#main" || !state.signedIn) return;
    route({ moveFocus: true });
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") tick();
    else window.clearTimeout(state.timer);
  });
  document.getElementById("sign-out").addEventListener("click", () => {
    leave({ status: "You signed out. The token is no longer kept in this tab." });
  });
  onUnauthorized((error) => {
    if (!state.signedIn) return;
    leave({ error: `The manager no longer accepts this tab's token (${error.describe()}). Sign in again.` });
  });
  await begin();
  document.body.dataset.ready = "true";
}

start();
