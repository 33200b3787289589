// Building DOM nodes and formatting values, without a framework.
//
// Every value from the API reaches the page as a text node or an attribute set through
// the DOM, never as HTML, so a job's data cannot inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else if (child instanceof Node) parent.appendChild(child);
    else parent.appendChild(document.createTextNode(String(child)));
  }
}

function assign(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.setAttribute("class", value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key in node && !(node instanceof SVGElement) && typeof value !== "string") {
      node[key] = value;
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
}

// h("a", {href: "#/jobs", class: "x"}, "text", child, [more])
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  assign(node, props);
  append(node, children);
  return node;
}

// The same for SVG elements.
export function s(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  assign(node, props);
  append(node, children);
  return node;
}

export function replaceChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

let uniqueCounter = 0;
export function uniqueId(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

export const STATES = ["scheduled", "queued", "running", "succeeded", "failed", "cancelled"];
export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

// A state as a badge: the word carries the meaning, the colour only repeats it.
export function badge(state) {
  return h("span", { class: `badge state-${state}` }, state);
}

export function jobLink(id, label) {
  return h("a", { href: `#/jobs/${encodeURIComponent(id)}`, class: "mono" }, label ?? id);
}

export function shortId(id) {
  return id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}

function pad(n) {
  return String(n).padStart(2, "0");
}

// Local time, to the second: "2026-11-29 11:21:03".
export function formatTime(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  return (
    `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ` +
    `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}`
  );
}

export function formatClock(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// "0.4 s", "12 s", "3 min 4 s", "2 h 5 min", "3 d 4 h".
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "";
  const abs = Math.abs(seconds);
  if (abs < 10) return `${abs.toFixed(1)} s`;
  if (abs < 60) return `${Math.round(abs)} s`;
  if (abs < 3600) {
    const m = Math.floor(abs / 60);
    const rest = Math.round(abs - m * 60);
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  if (abs < 86400) {
    const hours = Math.floor(abs / 3600);
    const m = Math.round((abs - hours * 3600) / 60);
    return m ? `${hours} h ${m} min` : `${hours} h`;
  }
  const days = Math.floor(abs / 86400);
  const hours = Math.round((abs - days * 86400) / 3600);
  return hours ? `${days} d ${hours} h` : `${days} d`;
}

// "3 min ago", "in 5 s", relative to the browser's clock.
export function formatRelative(iso) {
  if (!iso) return "";
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (Number.isNaN(seconds)) return "";
  if (Math.abs(seconds) < 1) return "now";
  return seconds >= 0 ? `${formatDuration(seconds)} ago` : `in ${formatDuration(-seconds)}`;
}

// A <time> element showing local time, with UTC and the relative age on hover.
export function timeCell(iso, { relative = false } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const label = relative ? formatRelative(iso) : formatTime(iso);
  const title = relative ? `${formatTime(iso)} (${iso})` : `${iso} · ${formatRelative(iso)}`;
  return h("time", { datetime: iso, title }, label);
}

export function secondsBetween(fromIso, toIso) {
  if (!fromIso || !toIso) return null;
  return (new Date(toIso).getTime() - new Date(fromIso).getTime()) / 1000;
}

export function formatJSON(value) {
  if (value === undefined) return "";
  return JSON.stringify(value, null, 2);
}

export function formatNumber(n) {
  return new Intl.NumberFormat("en").format(n);
}

export function formatPercent(ratio) {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "—";
  const pct = ratio * 100;
  return `${pct < 10 && pct > 0 ? pct.toFixed(1) : Math.round(pct)} %`;
}

export function plural(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

// A table inside a container that scrolls sideways, so a wide table never widens the
// page. The container is focusable and named, so a keyboard user can scroll it too;
// the table is named the same, by a caption only a screen reader reads.
export function tableWrap(label, table) {
  table.prepend(h("caption", { class: "visually-hidden" }, label));
  return h("div", { class: "table-wrap", role: "region", "aria-label": `${label} table`, tabindex: "0" }, table);
}

// A section with a heading, named by that heading.
export function section(title, ...children) {
  const id = uniqueId("section");
  return h(
    "section",
    { class: "panel", "aria-labelledby": id },
    h("h2", { id }, title),
    ...children,
  );
}

function focusKey(node) {
  if (node.dataset && node.dataset.key) return node.dataset.key;
  const href = node.getAttribute("href") ?? "";
  return `${node.tagName}|${href}|${node.getAttribute("name") ?? ""}|${node.textContent.trim()}`;
}

const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]";

// Replace a container's children with fresh ones, as a refresh does, keeping what the
// operator was doing: the focused control (matched by its key, href or text) and how far
// each scrolling table was scrolled sideways.
export function patch(container, ...children) {
  const active = document.activeElement;
  const key = active && active !== container && container.contains(active) ? focusKey(active) : null;
  const scrolls = [...container.querySelectorAll(".table-wrap")].map((node) => node.scrollLeft);
  replaceChildren(container, ...children);
  container.querySelectorAll(".table-wrap").forEach((node, i) => {
    if (scrolls[i]) node.scrollLeft = scrolls[i];
  });
  if (key !== null) {
    const match = [...container.querySelectorAll(FOCUSABLE)].find((node) => focusKey(node) === key);
    if (match) match.focus({ preventScroll: true });
  }
  return container;
}
