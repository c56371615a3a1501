// One object: its status, conditions, owners and owned objects, events about it and its YAML, all live;
// and what can be done to it: scale, restart, edit, delete, and for pods logs and a shell.
"use strict";

import { LiveList, age, badge, clear, dialog, editYaml, errorBox, getYaml, h, k8s, onLeave } from "./core.js";
import { CHILDREN, apiPath, findKind, healthBadge, kindOf, listHref, objectHref, podState } from "./kinds.js";

const SCALABLE = new Set(["Deployment", "StatefulSet", "ReplicaSet"]);
const RESTARTABLE = new Set(["Deployment", "StatefulSet", "DaemonSet"]);
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

function scalar(value) {
  return value === null || ["string", "number", "boolean"].includes(typeof value);
}

function keyValues(entries) {
  return h("dl.kv", {}, entries.map(([key, value]) => [h("dt", {}, key), h("dd", {}, value)]));
}

function chips(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h("span.muted", {}, "none");
  return h("div.badges", {}, entries.map(([k, v]) => h("code.chip", {}, v === "" ? k : `${k}=${v}`)));
}

function section(title, ...body) {
  return h("section.panel", { "aria-label": title }, h("h2", {}, title), body);
}

function conditionsTable(conditions) {
  if (!conditions || !conditions.length) return null;
  return section("Conditions", h("div.scroll", {}, h("table.data", { id: "conditions" },
    h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Message", "Last transition"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, conditions.map((c) => h("tr", {},
      h("th", { scope: "row" }, c.type), h("td", {}, badge(c.status, c.status === "True" ? "ok" : "neutral")),
      h("td", {}, c.reason || ""), h("td", {}, c.message || ""), h("td", {}, age(c.lastTransitionTime))))))));
}

function containerState(cs) {
  const state = (cs && cs.state) || {};
  if (state.running) return badge("Running", cs.ready ? "ok" : "warn");
  if (state.waiting) return badge(state.waiting.reason || "Waiting", "warn");
  if (state.terminated) return badge(state.terminated.reason || "Terminated", state.terminated.exitCode ? "bad" : "done");
  return badge("Unknown", "neutral");
}

function containersSection(pod) {
  const statuses = new Map(((pod.status || {}).containerStatuses || []).map((c) => [c.name, c]));
  const ns = encodeURIComponent(pod.metadata.namespace);
  const name = encodeURIComponent(pod.metadata.name);
  return section("Containers", h("div.scroll", {}, h("table.data", { id: "containers" },
    h("thead", {}, h("tr", {}, ["Name", "Image", "State", "Restarts", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, (pod.spec.containers || []).map((c) => {
      const cs = statuses.get(c.name);
      const q = `?c=${encodeURIComponent(c.name)}`;
      return h("tr", {}, h("th", { scope: "row" }, c.name), h("td", {}, c.image), h("td", {}, containerState(cs)),
        h("td", {}, cs ? cs.restartCount : 0),
        h("td.actions", {}, h("a.button", { href: `#/logs/${ns}/${name}${q}` }, "Logs"), " ",
          h("a.button", { href: `#/exec/${ns}/${name}${q}` }, "Shell")));
    })))));
}

function dataSection(obj, secret) {
  const data = obj.data || {};
  const keys = Object.keys(data).sort();
  if (!keys.length) return section("Data", h("p.muted", {}, "No data."));
  return section("Data", h("dl.kv.data", {}, keys.map((key) => {
    let value;
    if (secret) {
      const slot = h("span.muted", {}, `hidden (${atob(data[key]).length} bytes)`);
      const reveal = h("button.plain.small", {
        type: "button", "aria-label": `Reveal ${key}`,
        onclick: () => {
          const shown = reveal.getAttribute("aria-pressed") === "true";
          clear(slot, shown ? `hidden (${atob(data[key]).length} bytes)` : h("pre.value", {}, decode(data[key])));
          reveal.setAttribute("aria-pressed", String(!shown));
          reveal.textContent = shown ? "Reveal" : "Hide";
        },
      }, "Reveal");
      reveal.setAttribute("aria-pressed", "false");
      value = [slot, " ", reveal];
    } else {
      value = h("pre.value", {}, data[key]);
    }
    return [h("dt", {}, key), h("dd", {}, value)];
  })));
}

function decode(b64) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

function summary(kind, obj) {
  const meta = obj.metadata;
  const rows = [["Name", meta.name]];
  if (meta.namespace) rows.push(["Namespace", meta.namespace]);
  rows.push(["Created", `${meta.creationTimestamp || ""} (${age(meta.creationTimestamp)} ago)`], ["UID", meta.uid]);
  if (kind.kind === "Pod") {
    rows.push(["Status", badge(...podState(obj))], ["Node", obj.spec.nodeName || "(not scheduled)"],
      ["Pod IP", (obj.status || {}).podIP || ""]);
  } else if (kind.kind === "Node") {
    const status = obj.status || {};
    const text = (map) => Object.entries(map || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    rows.push(["Capacity", text(status.capacity)], ["Allocatable", text(status.allocatable)],
      ["Addresses", (status.addresses || []).map((a) => `${a.type} ${a.address}`).join(", ")]);
  } else if (obj.spec && obj.spec.replicas !== undefined) {
    rows.push(["Replicas", `${(obj.status || {}).readyReplicas || 0} ready of ${obj.spec.replicas}`], ["Health", healthBadge(kind, obj)]);
  }
  for (const [key, value] of Object.entries(obj.status || {})) {
    if (scalar(value) && !["phase", "podIP", "readyReplicas"].includes(key)) rows.push([key, String(value)]);
  }
  let annotations = meta.annotations;
  if (kind.kind === "Secret" && annotations && annotations[LAST_APPLIED]) {
    annotations = { ...annotations, [LAST_APPLIED]: "(hidden: it holds the secret's values)" };
  }
  rows.push(["Labels", chips(meta.labels)], ["Annotations", chips(annotations)]);
  return section("Summary", keyValues(rows));
}

function ownersSection(obj) {
  const owners = obj.metadata.ownerReferences || [];
  if (!owners.length) return null;
  return section("Controlled by", h("ul.links", {}, owners.map((o) => {
    const kind = kindOf(o.apiVersion, o.kind);
    const label = `${o.kind} ${o.name}`;
    return h("li", {}, kind ? h("a", { href: objectHref(kind, { namespace: obj.metadata.namespace, name: o.name }) }, label) : label);
  })));
}

async function act(main, fn) {
  try {
    await fn();
  } catch (err) {
    const box = errorBox(err);
    main.querySelector(".messages").replaceChildren(box);
  }
}

// The buttons that act on the object start disabled: they read it, and it arrives with the
// first watch event; detailPage enables them then.
function actions(main, kind, path, getObj) {
  const buttons = [];
  if (SCALABLE.has(kind.kind)) {
    buttons.push(h("button.plain", { type: "button", id: "scale", disabled: true, onclick: async () => {
      const obj = getObj();
      const input = h("input", { type: "number", min: 0, value: obj.spec.replicas ?? 1, id: "replicas", name: "replicas" });
      const choice = await dialog(`Scale ${kind.kind.toLowerCase()} ${obj.metadata.name}`,
        h("label", {}, "Replicas ", input), [["Cancel", "", "plain"], ["Scale", "scale", "primary"]]);
      if (choice !== "scale") return;
      await act(main, () => k8s("PATCH", path, { spec: { replicas: Number(input.value) } }, "application/merge-patch+json"));
    } }, "Scale"));
  }
  if (RESTARTABLE.has(kind.kind)) {
    buttons.push(h("button.plain", { type: "button", id: "restart", disabled: true, onclick: async () => {
      const patch = { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } } } };
      await act(main, () => k8s("PATCH", path, patch, "application/merge-patch+json"));
    } }, "Restart"));
  }
  buttons.push(h("button.plain", { type: "button", id: "edit", onclick: () => main.querySelector("#yaml-edit").click() }, "Edit YAML"));
  buttons.push(h("button.danger", { type: "button", id: "delete", disabled: true, onclick: async () => {
    const obj = getObj();
    const choice = await dialog(`Delete ${kind.kind.toLowerCase()} ${obj.metadata.name}?`,
      h("p", {}, kind.kind === "Namespace" ? "Everything in the namespace is deleted with it." : "This cannot be undone."),
      [["Cancel", "", "plain"], ["Delete", "delete", "danger"]]);
    if (choice !== "delete") return;
    await act(main, async () => {
      await k8s("DELETE", path, { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" });
      location.hash = listHref(kind);
    });
  } }, "Delete"));
  return h("div.actions", { role: "toolbar", "aria-label": "Actions" }, buttons);
}

function yamlSection(main, kind, path) {
  const pre = h("pre.yaml", { id: "yaml", tabindex: 0 }, "Loading…");
  const editor = h("textarea.yaml", { id: "yaml-editor", spellcheck: "false", "aria-label": "YAML", hidden: true, rows: 24 });
  const result = h("div");
  let editing = false;
  let original = "";
  // Whether pre holds the object's YAML yet (not "Loading…"): editing starts from it.
  let loaded = false;
  // A Secret's YAML holds its values: shown only when asked, like the values themselves.
  let revealed = kind.kind !== "Secret";
  const show = h("button.plain", { type: "button", id: "yaml-show", hidden: revealed, onclick: () => {
    revealed = true;
    show.hidden = true;
    load();
  } }, "Show YAML");
  const load = async () => {
    if (editing) return;
    if (!revealed) {
      pre.textContent = "Hidden: a Secret's YAML holds its values.";
      return;
    }
    try {
      pre.textContent = await getYaml(path);
      loaded = true;
    } catch (err) {
      clear(result, errorBox(err));
    }
  };
  const applyButton = h("button.primary", { type: "button", id: "yaml-apply", hidden: true, onclick: async () => {
    try {
      const done = await editYaml(path, original, editor.value);
      editing = false;
      editor.hidden = applyButton.hidden = cancelButton.hidden = true;
      pre.hidden = editButton.hidden = false;
      clear(result, h("div.alert.ok", { role: "status" }, done.action === "unchanged" ? "No changes." : "Applied."));
      await load();
    } catch (err) {
      clear(result, errorBox(err));
    }
  } }, "Apply");
  const cancelButton = h("button.plain", { type: "button", hidden: true, onclick: () => {
    editing = false;
    editor.hidden = applyButton.hidden = cancelButton.hidden = true;
    pre.hidden = editButton.hidden = false;
    clear(result);
    load();
  } }, "Cancel");
  const editButton = h("button.plain", { type: "button", id: "yaml-edit", onclick: async () => {
    if (!revealed) {
      revealed = true;
      show.hidden = true;
    }
    if (!loaded) await load();
    if (!loaded) return;
    editing = true;
    original = pre.textContent;
    editor.value = original;
    pre.hidden = editButton.hidden = true;
    editor.hidden = applyButton.hidden = cancelButton.hidden = false;
    main.querySelector("#yaml-section").scrollIntoView();
    editor.focus();
  } }, "Edit");
  const el = h("section.panel", { id: "yaml-section", "aria-label": "YAML" },
    h("div.page-head", {}, h("h2", {}, "YAML"), h("div.actions", {}, show, editButton, applyButton, cancelButton)), result, pre, editor);
  return { el, load };
}

export function detailPage(main, group, version, plural, namespace, name) {
  const kind = findKind(group, version, plural);
  if (!kind) {
    clear(main, h("h1", {}, "Unknown resource"));
    return;
  }
  const ns = kind.namespaced ? namespace : "";
  const path = apiPath(kind, ns, name);
  let obj = null;
  const body = h("div", {}, "Loading…");
  const owned = h("div");
  const events = h("div");
  const yaml = yamlSection(main, kind, path);
  const toolbar = actions(main, kind, path, () => obj);
  clear(main,
    h("nav.crumbs", { "aria-label": "Breadcrumb" }, h("a", { href: listHref(kind) }, kind.title), " / ", name),
    h("div.page-head", {}, h("h1", {}, `${kind.kind} ${name}`), toolbar),
    h("div.messages", { "aria-live": "polite" }),
    body, owned, events, yaml.el);

  let version_ = null;
  let children = null;
  let about = null;
  const self = new LiveList(apiPath(kind, ns), { fieldSelector: `metadata.name=${name}` }, (items) => {
    const current = items[0];
    if (!current) {
      if (self.synced) clear(body, h("div.alert.warn", { role: "status" }, `${kind.kind} ${name} does not exist (any more).`));
      return;
    }
    const first = obj === null;
    obj = current;
    if (first) {
      for (const button of toolbar.querySelectorAll("button[disabled]")) button.disabled = false;
      // The owned objects and events are matched by this object's uid: redraw them once it is known.
      if (children) children.changed();
      if (about) about.changed();
    }
    clear(body, summary(kind, obj), ownersSection(obj), kind.kind === "Pod" && containersSection(obj),
      kind.kind === "ConfigMap" && dataSection(obj, false), kind.kind === "Secret" && dataSection(obj, true),
      conditionsTable((obj.status || {}).conditions));
    if (obj.metadata.resourceVersion !== version_) {
      version_ = obj.metadata.resourceVersion;
      yaml.load();
    }
  }, (status) => clear(body, errorBox(status)));
  onLeave(self.stop);

  const child = CHILDREN[kind.kind] && findKind(...CHILDREN[kind.kind]);
  if (child) {
    children = new LiveList(apiPath(child, ns), {
      filter: (o) => obj && (o.metadata.ownerReferences || []).some((r) => r.uid === obj.metadata.uid),
    }, (items) => clear(owned, section(`Owns: ${child.title}`, items.length ? h("ul.links", { id: "owned" },
      items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).map((o) => h("li", {},
        h("a", { href: objectHref(child, o) }, o.metadata.name), " ", healthBadge(child, o)))) : h("p.muted", {}, "None."))));
    onLeave(children.stop);
  }

  const eventKind = findKind("", "v1", "events");
  about = new LiveList(apiPath(eventKind, ns), {
    filter: (e) => {
      const io = e.involvedObject || {};
      return obj ? io.uid === obj.metadata.uid || (io.kind === kind.kind && io.name === name) : io.name === name;
    },
  }, (items) => {
    const when = (e) => Date.parse(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp) || 0;
    items.sort((a, b) => when(b) - when(a));
    clear(events, section("Events", items.length ? h("div.scroll", {}, h("table.data", { id: "events" },
      h("thead", {}, h("tr", {}, ["Type", "Reason", "Message", "Count", "Last seen"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.slice(0, 50).map((e) => h("tr", {},
        h("td", {}, badge(e.type || "Normal", e.type === "Warning" ? "bad" : "neutral")), h("td", {}, e.reason || ""),
        h("td", {}, e.message || ""), h("td", {}, e.count || 1),
        h("td", {}, age(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp))))))) : h("p.muted", {}, "No events.")));
  });
  onLeave(about.stop);
}
