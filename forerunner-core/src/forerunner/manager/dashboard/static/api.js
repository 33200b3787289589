// The manager's /v1 API, called with paths relative to the page, so the dashboard works
// under whatever prefix a proxy serves it at: from https://host/ops/, "v1/jobs" is
// https://host/ops/v1/jobs.

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

export async function request(path, { method = "GET", body, signal } = {}) {
  const init = { method, cache: "no-store", credentials: "same-origin", signal, headers: {} };
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
    if (detail && detail.message) {
      throw new ApiError(response.status, detail.code, detail.message, detail.field);
    }
    const statusText = response.statusText ? ` ${response.statusText}` : "";
    throw new ApiError(
      response.status,
      `http_${response.status}`,
      `The manager answered ${response.status}${statusText} to ${method} ${path}.`,
    );
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
