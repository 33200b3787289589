// The manager's /v1 API, called with paths relative to the page, so the dashboard works
// under whatever prefix a proxy serves it at: from https://host/ops/, "v1/jobs" is
// https://host/ops/v1/jobs.
//
// A manager that asks for tokens gets this tab's token in an Authorization header on
// every call, never in a URL. The token lives in sessionStorage, which the browser
// drops when the tab closes and never sends anywhere by itself (unlike a cookie), so
// another site's page cannot make the browser use it. Its key names the page's path,
// so two managers served under two prefixes of one host keep apart.

const TOKEN_KEY = `forerunner.token:${location.pathname}`;

// Where the token stays when the browser refuses sessionStorage (a privacy mode): in
// this page's memory only, gone on reload.
let memoryToken = null;
let unauthorized = () => {};

export const token = {
  get() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) ?? memoryToken;
    } catch {
      return memoryToken;
    }
  },
  set(value) {
    memoryToken = value;
    try {
      window.sessionStorage.setItem(TOKEN_KEY, value);
    } catch {
      // memoryToken holds it for this page.
    }
  },
  clear() {
    memoryToken = null;
    try {
      window.sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // Nothing was stored.
    }
  },
};

// `handler(error)` runs when any call is answered 401: the token is gone or was never
// valid, and the shell shows the sign-in form again.
export function onUnauthorized(handler) {
  unauthorized = handler;
}

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field ?? null;
  }

  // What an operator reads: the manager's own message, with its code for searching.
  describe() {
    if (this.status === 0) return this.message;
    const where = this.field ? ` (field ${this.field})` : "";
    return `${this.message}${where} [${this.status} ${this.code}]`;
  }
}

// `bearer` overrides the tab's token for one call: the sign-in form tries a token
// before it keeps it. A 401 answer to such a trial is the caller's to report.
export async function request(path, { method = "GET", body, signal, bearer } = {}) {
  const init = { method, cache: "no-store", credentials: "same-origin", signal, headers: {} };
  const credential = bearer ?? token.get();
  if (credential) init.headers.authorization = `Bearer ${credential}`;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  init.headers.accept = "application/json";
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", `Cannot reach the manager: ${error.message}.`);
  }
  const text = await response.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const detail = payload && payload.error;
    let error;
    if (detail && detail.message) {
      error = new ApiError(response.status, detail.code, detail.message, detail.field);
    } else {
      const statusText = response.statusText ? ` ${response.statusText}` : "";
      error = new ApiError(
        response.status,
        `http_${response.status}`,
        `The manager answered ${response.status}${statusText} to ${method} ${path}.`,
      );
    }
    if (response.status === 401 && bearer === undefined) unauthorized(error);
    throw error;
  }
  return payload;
}

const jobPath = (id) => `v1/jobs/${encodeURIComponent(id)}`;

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const api = {
  // Open, like the page itself: whether the manager asks for tokens, and the role of
  // the token sent (null for none or an unknown one).
  session: (options = {}) => request("v1/session", options),
  overview: (signal) => request("v1/overview", { signal }),
  workers: (signal) => request("v1/workers", { signal }),
  jobs: (params, signal) => request(`v1/jobs${query(params)}`, { signal }),
  job: (id, signal) => request(jobPath(id), { signal }),
  timeline: (id, signal) => request(`${jobPath(id)}/timeline`, { signal }),
  cancel: (id) => request(`${jobPath(id)}/cancel`, { method: "POST" }),
  retry: (id) => request(`${jobPath(id)}/retry`, { method: "POST" }),
  retryMany: (body) => request("v1/jobs/retry", { method: "POST", body }),
  purge: (body) => request("v1/jobs/purge", { method: "POST", body }),
};
