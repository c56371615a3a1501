// The overview and the per-kind lists, both live: every table is a LiveList and redraws on each change.
"use strict";

import { LiveList, age, badge, clear, errorBox, h, onLeave } from "./core.js";
import { BUILTIN, apiPath, columns, findKind, health, involvedLink, listHref, objectHref } from "./kinds.js";
import { state } from "./state.js";

function byKind(plural, group = "") {
  return BUILTIN.find((k) => k.plural === plural && k.group === group);
}

function watchKind(kind, namespace, options, onChange, onError) {
  const list = new LiveList(apiPath(kind, kind.namespaced ? namespace : ""), options, onChange, onError);
  onLeave(list.stop);
  return list;
}

function sortByName(items) {
  return items.sort((a, b) => (a.metadata.namespace || "").localeCompare(b.metadata.namespace || "")
    || a.metadata.name.localeCompare(b.metadata.name));
}

function eventTime(e) {
  return Date.parse(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp) || 0;
}

// -- overview --------------------------------------------------------------------------------------------

function quantity(value) {
  return value === undefined ? "" : String(value);
}

function nodeCard(node) {
  const kind = byKind("nodes");
  const status = node.status || {};
  const capacity = status.capacity || {};
  const allocatable = status.allocatable || {};
  const rows = ["cpu", "memory", "pods", "ephemeral-storage"].filter((r) => r in capacity).map((r) =>
    h("tr", {}, h("th", { scope: "row" }, r), h("td", {}, quantity(capacity[r])), h("td", {}, quantity(allocatable[r]))));
  const conditions = (status.conditions || []).map((c) => {
    const good = c.type === "Ready" ? c.status === "True" : c.status === "False";
    return badge(`${c.type}: ${c.status}`, good ? "ok" : "bad");
  });
  return h("article.card", { "aria-label": `node ${node.metadata.name}` },
    h("h3", {}, h("a", { href: objectHref(kind, node) }, node.metadata.name), " ", badge(health(kind, node) === "ok" ? "Ready" : "NotReady", health(kind, node))),
    h("table.compact", {}, h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "Capacity"), h("th", {}, "Allocatable"))), h("tbody", {}, rows)),
    h("div.badges", {}, conditions));
}

const WORKLOADS = [["deployments", "apps"], ["statefulsets", "apps"], ["daemonsets", "apps"],
  ["replicasets", "apps"], ["jobs", "batch"], ["pods", ""]];

export function overviewPage(main) {
  const nodes = h("div.cards", {}, "Loading nodes…");
  const counts = h("tbody");
  const warnings = h("tbody");
  const scope = state.namespace ? `namespace ${state.namespace}` : "all namespaces";
  clear(main,
    h("h1", {}, "Overview"),
    h("section", { "aria-labelledby": "nodes-h" }, h("h2", { id: "nodes-h" }, "Nodes"), nodes),
    h("section", { "aria-labelledby": "wl-h" }, h("h2", { id: "wl-h" }, `Workloads (${scope})`),
      h("div.scroll", {}, h("table.data", { id: "workload-counts" },
        h("thead", {}, h("tr", {}, ["Kind", "Total", "Healthy", "Progressing", "Failing", "Done"].map((t) => h("th", { scope: "col" }, t)))),
        counts))),
    h("section", { "aria-labelledby": "ev-h" }, h("h2", { id: "ev-h" }, "Recent warnings"),
      h("div.scroll", {}, h("table.data", { id: "warnings" },
        h("thead", {}, h("tr", {}, ["Last seen", "Object", "Reason", "Message"].map((t) => h("th", { scope: "col" }, t)))),
        warnings))));

  watchKind(byKind("nodes"), "", {}, (items) => {
    clear(nodes, sortByName(items).map(nodeCard));
    if (!items.length) clear(nodes, "No nodes.");
  });

  const rows = new Map();
  for (const [plural, group] of WORKLOADS) {
    const kind = byKind(plural, group);
    const row = h("tr", {}, h("th", { scope: "row" }, h("a", { href: listHref(kind) }, kind.title)), h("td", {}, "…"));
    rows.set(plural, row);
    counts.append(row);
    watchKind(kind, state.namespace, {}, (items) => {
      const tally = { ok: 0, warn: 0, bad: 0, done: 0 };
      for (const item of items) tally[health(kind, item)] += 1;
      clear(row, h("th", { scope: "row" }, h("a", { href: listHref(kind) }, kind.title)),
        h("td", {}, items.length), h("td", {}, tally.ok), h("td", {}, tally.warn),
        h("td", {}, tally.bad ? badge(tally.bad, "bad") : 0), h("td", {}, tally.done));
    });
  }

  watchKind(byKind("events"), state.namespace, {}, (items) => {
    const recent = items.filter((e) => e.type === "Warning").sort((a, b) => eventTime(b) - eventTime(a)).slice(0, 20);
    clear(warnings, recent.map((e) => h("tr", {},
      h("td", {}, age(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp)),
      h("td", {}, involvedLink(e)),
      h("td", {}, e.reason || ""), h("td", {}, e.message || ""))));
    if (!recent.length) clear(warnings, h("tr", {}, h("td", { colspan: 4 }, "No warnings.")));
  });
}

// -- lists -----------------------------------------------------------------------------------------------

export function listPage(main, group, version, plural) {
  const kind = findKind(group, version, plural);
  if (!kind) {
    clear(main, h("h1", {}, "Unknown resource"), h("p", {}, `${plural}.${group || "core"} is not served.`));
    return;
  }
  const allNamespaces = kind.namespaced && !state.namespace;
  const cols = columns(kind);
  const tbody = h("tbody");
  const count = h("span.count", { "aria-live": "polite" });
  const problem = h("div");
  const nameFilter = h("input", { type: "search", id: "name-filter", placeholder: "Filter by name", "aria-label": "Filter by name", value: state.filters[kind.plural] || "" });
  const labelFilter = h("input", { type: "search", id: "label-filter", placeholder: "Label selector, e.g. app=web", "aria-label": "Label selector", value: state.labels[kind.plural] || "" });
  const head = h("tr", {}, h("th", { scope: "col" }, "Name"), allNamespaces && h("th", { scope: "col" }, "Namespace"),
    cols.map(([title]) => h("th", { scope: "col" }, title)));
  clear(main,
    h("div.page-head", {}, h("h1", {}, kind.title, " ", count),
      h("a.button", { href: `#/new?kind=${encodeURIComponent(kind.kind)}` }, "Create")),
    h("p.scope", {}, kind.namespaced ? (state.namespace ? `Namespace ${state.namespace}` : "All namespaces") : "Cluster-scoped"),
    h("form.filters", { role: "search", onsubmit: (e) => e.preventDefault() }, nameFilter, labelFilter),
    problem,
    h("div.scroll", {}, h("table.data", { id: "resource-list", "aria-label": kind.title }, h("thead", {}, head), tbody)));

  let list = null;
  const render = () => {
    if (!list) return;
    const needle = nameFilter.value.trim().toLowerCase();
    const sorted = kind.kind === "Event" ? list.list().sort((a, b) => eventTime(b) - eventTime(a)) : sortByName(list.list());
    const items = sorted.filter((o) => !needle || o.metadata.name.toLowerCase().includes(needle));
    clear(count, `(${items.length})`);
    clear(tbody, items.map((o) => h("tr", { dataset: { name: o.metadata.name } },
      h("th", { scope: "row" }, h("a", { href: objectHref(kind, o) }, o.metadata.name)),
      allNamespaces && h("td", {}, o.metadata.namespace || ""),
      cols.map(([, cell]) => h("td", {}, cell(o))))));
    if (list.synced && !items.length) clear(tbody, h("tr", {}, h("td", { colspan: cols.length + 2 }, "Nothing here.")));
  };
  const subscribe = () => {
    if (list) list.stop();
    clear(problem);
    list = new LiveList(apiPath(kind, kind.namespaced ? state.namespace : ""), { labelSelector: labelFilter.value.trim() },
      render, (status) => clear(problem, errorBox(status)));
  };
  nameFilter.addEventListener("input", () => { state.filters[kind.plural] = nameFilter.value; render(); });
  labelFilter.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); state.labels[kind.plural] = labelFilter.value; subscribe(); }
  });
  labelFilter.addEventListener("change", () => { state.labels[kind.plural] = labelFilter.value; subscribe(); });
  subscribe();
  onLeave(() => list && list.stop());
}
