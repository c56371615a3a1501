// Pages that are tools rather than views: writing new YAML, a container's logs, a shell in a container.
"use strict";

import { applyYaml, clear, errorBox, h, k8s, onLeave } from "./core.js";
import { kindOf, objectHref } from "./kinds.js";
import { state } from "./state.js";

const TEMPLATES = {
  Deployment: (ns) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-app
  namespace: ${ns}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: my-app
  template:
    metadata:
      labels:
        app: my-app
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo hello; sleep 3600"]
`,
  ConfigMap: (ns) => `apiVersion: v1
kind: ConfigMap
metadata:
  name: my-config
  namespace: ${ns}
data:
  key: value
`,
};

export function newPage(main, query) {
  const ns = state.namespace || "default";
  const template = (TEMPLATES[query.get("kind")] || TEMPLATES.Deployment)(ns);
  const editor = h("textarea.yaml", { id: "new-yaml", spellcheck: "false", rows: 26, "aria-label": "YAML to apply" });
  editor.value = template;
  const result = h("div", { "aria-live": "polite" });
  const apply = h("button.primary", { type: "submit", id: "new-apply" }, "Apply");
  clear(main,
    h("h1", {}, "Create from YAML"),
    h("p", {}, "One or more documents separated by ", h("code", {}, "---"),
      `. Objects without a namespace go to ${ns}. Applied with server-side apply (field manager kbox-dashboard).`),
    h("form.editor", { onsubmit: async (e) => {
      e.preventDefault();
      apply.disabled = true;
      try {
        const done = await applyYaml(editor.value, ns);
        clear(result, h("div.alert.ok", { role: "status" }, h("ul.links", {}, done.items.map((item) => {
          const kind = kindOf(item.apiVersion, item.kind);
          const label = `${item.kind.toLowerCase()}/${item.name} ${item.action}`;
          return h("li", {}, kind ? h("a", { href: objectHref(kind, item) }, label) : label);
        }))));
      } catch (err) {
        clear(result, errorBox(err));
      } finally {
        apply.disabled = false;
      }
    } }, editor, h("div.form-buttons", {}, apply)),
    result);
  editor.focus();
}

// -- logs ------------------------------------------------------------------------------------------------

async function podContainers(ns, name) {
  const pod = await k8s("GET", `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`);
  return [pod, [...(pod.spec.initContainers || []), ...pod.spec.containers].map((c) => c.name)];
}

function backLink(ns, name) {
  return h("nav.crumbs", { "aria-label": "Breadcrumb" }, h("a", { href: "#/r/core/v1/pods" }, "Pods"), " / ",
    h("a", { href: `#/r/core/v1/pods/${encodeURIComponent(ns)}/${encodeURIComponent(name)}` }, name));
}

export async function logsPage(main, ns, name, query) {
  const output = h("pre.logs", { id: "logs", tabindex: 0, "aria-label": "Log output", "aria-live": "off" });
  const select = h("select", { id: "log-container", "aria-label": "Container" });
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
  const previous = h("input", { type: "checkbox", id: "log-previous" });
  const status = h("div", { "aria-live": "polite" });
  clear(main, backLink(ns, name), h("h1", {}, `Logs of ${name}`),
    h("form.filters", { onsubmit: (e) => e.preventDefault() }, select,
      h("label", {}, follow, " Follow"), h("label", {}, previous, " Previous run")), status, output);
  let controller = null;
  onLeave(() => controller && controller.abort());
  try {
    const [, containers] = await podContainers(ns, name);
    for (const c of containers) select.append(h("option", { value: c }, c));
    select.value = query.get("c") || containers[0];
  } catch (err) {
    clear(status, errorBox(err));
    return;
  }
  const stream = async () => {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    output.textContent = "";
    clear(status);
    const params = new URLSearchParams({ container: select.value, tailLines: "2000" });
    if (follow.checked && !previous.checked) params.set("follow", "true");
    if (previous.checked) params.set("previous", "true");
    try {
      const resp = await fetch(`/k8s/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}/log?${params}`,
        { signal: mine.signal, credentials: "same-origin" });
      if (!resp.ok) {
        let message = `HTTP ${resp.status}`;
        try { message = (await resp.json()).message || message; } catch (_) { /* not a Status */ }
        clear(status, errorBox(message));
        return;
      }
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        const atBottom = output.scrollHeight - output.scrollTop - output.clientHeight < 40;
        output.append(decoder.decode(value, { stream: true }));
        if (atBottom) output.scrollTop = output.scrollHeight;
      }
      if (params.has("follow")) clear(status, h("div.alert.warn", { role: "status" }, "The log stream ended."));
    } catch (err) {
      if (!mine.signal.aborted) clear(status, errorBox(err));
    }
  };
  select.addEventListener("change", stream);
  follow.addEventListener("change", stream);
  previous.addEventListener("change", stream);
  stream();
}

// -- exec ------------------------------------------------------------------------------------------------

const SHELL = "command -v bash >/dev/null 2>&1 && exec bash || exec sh";

export async function execPage(main, ns, name, query) {
  const screen = h("div.terminal", { id: "terminal" });
  const status = h("div", { "aria-live": "polite" });
  const select = h("select", { id: "exec-container", "aria-label": "Container" });
  clear(main, backLink(ns, name), h("h1", {}, `Shell in ${name}`),
    h("form.filters", { onsubmit: (e) => e.preventDefault() }, select), status, screen);
  try {
    const [, containers] = await podContainers(ns, name);
    for (const c of containers) select.append(h("option", { value: c }, c));
    select.value = query.get("c") || containers[0];
  } catch (err) {
    clear(status, errorBox(err));
    return;
  }
  let session = null;
  const open = () => {
    if (session) session();
    clear(screen);
    session = connect(screen, status, ns, name, select.value);
  };
  select.addEventListener("change", open);
  onLeave(() => session && session());
  open();
}

function connect(screen, status, ns, name, container) {
  const term = new window.Terminal({ cursorBlink: true, fontSize: 14, convertEol: false });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  term.focus();
  const params = new URLSearchParams({ container, stdin: "true", stdout: "true", tty: "true" });
  for (const part of ["sh", "-c", SHELL]) params.append("command", part);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const path = `/_/exec/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}/exec?${params}`;
  const ws = new WebSocket(`${scheme}://${location.host}${path}`, ["v5.channel.k8s.io", "v4.channel.k8s.io"]);
  ws.binaryType = "arraybuffer";
  const encoder = new TextEncoder();
  const send = (channel, bytes) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const message = new Uint8Array(bytes.length + 1);
    message[0] = channel;
    message.set(bytes, 1);
    ws.send(message);
  };
  const resize = () => send(4, encoder.encode(JSON.stringify({ Width: term.cols, Height: term.rows })));
  ws.onopen = () => { clear(status); resize(); };
  ws.onmessage = (msg) => {
    const data = new Uint8Array(msg.data);
    if (!data.length) return;
    if (data[0] === 1 || data[0] === 2) term.write(data.subarray(1));
    else if (data[0] === 3) {
      const text = new TextDecoder().decode(data.subarray(1));
      let message = "the shell ended";
      try { const s = JSON.parse(text); if (s.status !== "Success") message = s.message || message; } catch (_) { /* keep */ }
      clear(status, h("div.alert.warn", { role: "status" }, message));
    }
  };
  ws.onclose = (e) => {
    if (!status.firstChild) clear(status, h("div.alert.warn", { role: "status" }, e.code === 1000 ? "The session ended." : "The session could not be opened or was cut."));
  };
  const input = term.onData((d) => send(0, encoder.encode(d)));
  const sized = term.onResize(resize);
  const onWindow = () => fit.fit();
  window.addEventListener("resize", onWindow);
  return () => {
    window.removeEventListener("resize", onWindow);
    input.dispose();
    sized.dispose();
    ws.close();
    term.dispose();
  };
}
