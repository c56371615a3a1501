// The page's plumbing: building elements, talking to the dashboard server, live lists over one WebSocket.
//
// Every request goes to this page's own server: /k8s/<api path> for one apiserver request (the server adds
// the session's token), /_/watch for live lists, /_/yaml and /_/apply for YAML. Writes carry the
// X-Kbox-Dashboard header, which the server requires (a cross-site form cannot send it).
"use strict";

// -- elements ------------------------------------------------------------------------------------------

// h("a.link", {href: "#/"}, "text", child...) builds an element; attributes starting with "on" are listeners.
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// -- formatting ----------------------------------------------------------------------------------------

export function age(timestamp) {
  if (!timestamp) return "";
  const seconds = Math.max(0, Math.floor((Date.now() - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

export function badge(text, tone) {
  return h(`span.badge.${tone || "neutral"}`, {}, text);
}

// -- requests ------------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code) {
    super((status && status.message) || `HTTP ${code}`);
    this.status = status;
    this.code = code;
  }
}

async function failure(resp) {
  let status = null;
  try {
    status = await resp.json();
    if (status && status.error) status = status.error;
  } catch (_) {
    status = { message: `HTTP ${resp.status} ${resp.statusText}` };
  }
  if (resp.status === 401) location.assign("/login");
  return new ApiError(status, resp.status);
}

// One apiserver request through /k8s; JSON in and out. Errors throw ApiError with the server's Status.
export async function k8s(method, path, body, contentType, accept) {
  const headers = { Accept: accept || "application/json" };
  if (method !== "GET") headers["X-Kbox-Dashboard"] = "1";
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const resp = await fetch("/k8s" + path, init);
  if (!resp.ok) throw await failure(resp);
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

export async function getYaml(path) {
  const resp = await fetch("/_/yaml?path=" + encodeURIComponent(path), { credentials: "same-origin" });
  if (!resp.ok) throw await failure(resp);
  return resp.text();
}

// Applies YAML (one or more documents); resolves to the server's {items}; throws ApiError with the Status.
export async function applyYaml(text, namespace) {
  const resp = await fetch("/_/apply?namespace=" + encodeURIComponent(namespace || "default"), {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/yaml", "X-Kbox-Dashboard": "1" },
    body: text,
  });
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

// Sends what the user changed in an object's YAML (the server makes a merge patch of it, as kubectl edit does).
export async function editYaml(path, original, edited) {
  const resp = await fetch("/_/edit", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-Kbox-Dashboard": "1" },
    body: JSON.stringify({ path, original, edited }),
  });
  if (!resp.ok) throw await failure(resp);
  return resp.json();
}

// -- live lists ----------------------------------------------------------------------------------------

// One WebSocket for every live list of the page; reconnects and re-subscribes when it drops.
class Live {
  constructor() {
    this.subs = new Map();
    this.next = 1;
    this.ws = null;
    this.connect();
  }

  connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/_/watch`);
    this.ws = ws;
    ws.onopen = () => {
      for (const sub of this.subs.values()) ws.send(JSON.stringify(sub.request));
    };
    ws.onmessage = (msg) => {
      const data = JSON.parse(msg.data instanceof ArrayBuffer ? new TextDecoder().decode(msg.data) : msg.data);
      const sub = this.subs.get(data.id);
      if (sub) sub.deliver(data);
    };
    ws.binaryType = "arraybuffer";
    ws.onclose = () => {
      if (this.ws !== ws) return;
      // The server restarted (sessions live in memory) or the session expired: back to the login page.
      fetch("/_/whoami", { credentials: "same-origin" }).then((resp) => {
        if (resp.status === 401) location.assign("/login");
        else setTimeout(() => this.connect(), 1000);
      }, () => setTimeout(() => this.connect(), 1000));
    };
  }

  subscribe(request, deliver) {
    const id = String(this.next++);
    const sub = { request: { op: "watch", id, ...request }, deliver };
    this.subs.set(id, sub);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(sub.request));
    return () => {
      this.subs.delete(id);
      if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op: "stop", id }));
    };
  }
}

let live = null;

function liveConnection() {
  if (live === null) live = new Live();
  return live;
}

// A live collection: objects by uid, kept current from SYNC and watch events. onChange(list) is called
// (at most once per animation frame) whenever it changes; onError(status) when the watch is refused.
export class LiveList {
  constructor(path, { labelSelector, fieldSelector, filter } = {}, onChange, onError) {
    this.items = new Map();
    this.synced = false;
    this.filter = filter || (() => true);
    this.onChange = onChange;
    this.pending = false;
    this.stop = liveConnection().subscribe({ path, labelSelector, fieldSelector }, (msg) => {
      if (msg.type === "SYNC") {
        this.items = new Map();
        for (const item of msg.items) this.items.set(item.metadata.uid, item);
        this.synced = true;
      } else if (msg.type === "ADDED" || msg.type === "MODIFIED") {
        this.items.set(msg.object.metadata.uid, msg.object);
      } else if (msg.type === "DELETED") {
        this.items.delete(msg.object.metadata.uid);
      } else if (msg.type === "ERROR") {
        if (onError) onError(msg.status || {});
        return;
      }
      this.changed();
    });
  }

  changed() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.onChange(this.list());
    });
  }

  list() {
    return [...this.items.values()].filter(this.filter);
  }
}

// -- pages ---------------------------------------------------------------------------------------------

// Cleanups registered by the page on screen, run when the next page replaces it.
const cleanups = [];

export function onLeave(fn) {
  cleanups.push(fn);
}

export function leavePage() {
  while (cleanups.length) {
    try {
      cleanups.pop()();
    } catch (err) {
      console.error(err);
    }
  }
}

// An alert box for an error (the apiserver's words when it gave a Status).
export function errorBox(err) {
  const message = err instanceof ApiError ? err.message : String((err && err.message) || err);
  return h("div.alert.error", { role: "alert" }, message);
}

// A modal dialog; resolves to the value of the button pressed (or "" when dismissed with Escape).
export function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const form = h("form", { method: "dialog" }, h("h2", {}, title), body,
      h("div.dialog-buttons", {}, buttons.map(([label, value, tone]) =>
        h(`button.${tone || "plain"}`, { value, type: "submit" }, label))));
    const box = h("dialog", { "aria-label": title }, form);
    box.addEventListener("close", () => {
      resolve(box.returnValue || "");
      box.remove();
    });
    document.body.append(box);
    box.showModal();
    const focus = body && body.querySelector && body.querySelector("input");
    if (focus) focus.focus();
  });
}
