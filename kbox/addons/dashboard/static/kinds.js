// The resource types the dashboard knows how to show: their URLs, list columns and health.
// Custom resources (from CRDs) get a generic entry made by customKind().
"use strict";

import { age, badge, h } from "./core.js";

export function apiPath(kind, namespace, name, sub) {
  let path = kind.group ? `/apis/${kind.group}/${kind.version}` : `/api/${kind.version}`;
  if (kind.namespaced && namespace) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${kind.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  if (sub) path += `/${sub}`;
  return path;
}

// "#/r/<group or core>/<version>/<plural>[/<namespace or ->/<name>]"
export function listHref(kind) {
  return `#/r/${kind.group || "core"}/${kind.version}/${kind.plural}`;
}

export function objectHref(kind, obj) {
  const meta = obj.metadata || obj;
  return `${listHref(kind)}/${kind.namespaced ? encodeURIComponent(meta.namespace) : "-"}/${encodeURIComponent(meta.name)}`;
}

function cond(obj, type) {
  return ((obj.status || {}).conditions || []).find((c) => c.type === type);
}

// -- health: "ok" | "warn" | "bad" | "done" -------------------------------------------------------------

export function podState(pod) {
  const status = pod.status || {};
  if (pod.metadata.deletionTimestamp) return ["Terminating", "warn"];
  for (const cs of [...(status.initContainerStatuses || []), ...(status.containerStatuses || [])]) {
    const waiting = (cs.state || {}).waiting;
    if (waiting && waiting.reason && waiting.reason !== "ContainerCreating" && waiting.reason !== "PodInitializing") {
      return [waiting.reason, /BackOff|Err|Invalid/.test(waiting.reason) ? "bad" : "warn"];
    }
  }
  const phase = status.phase || "Pending";
  if (phase === "Running") {
    const ready = cond(pod, "Ready");
    return ["Running", ready && ready.status === "True" ? "ok" : "warn"];
  }
  if (phase === "Succeeded") return ["Completed", "done"];
  if (phase === "Failed") return [status.reason || "Failed", "bad"];
  return [phase, "warn"];
}

function replicasHealth(want, ready) {
  if (want === 0 && ready === 0) return "done";
  return ready >= want ? "ok" : "warn";
}

export function health(kind, obj) {
  const s = obj.status || {};
  const spec = obj.spec || {};
  switch (kind.kind) {
    case "Pod":
      return podState(obj)[1];
    case "Deployment":
    case "StatefulSet":
    case "ReplicaSet": {
      const want = spec.replicas ?? 1;
      const failed = kind.kind === "Deployment" && ((cond(obj, "Progressing") || {}).reason === "ProgressDeadlineExceeded");
      return failed ? "bad" : replicasHealth(want, s.readyReplicas || 0);
    }
    case "DaemonSet":
      return replicasHealth(s.desiredNumberScheduled || 0, s.numberReady || 0);
    case "Job":
      if ((cond(obj, "Failed") || {}).status === "True") return "bad";
      if ((cond(obj, "Complete") || {}).status === "True") return "done";
      return "warn";
    case "Node":
      return (cond(obj, "Ready") || {}).status === "True" ? "ok" : "bad";
    default:
      return "ok";
  }
}

const HEALTH_TEXT = { ok: "Healthy", warn: "Progressing", bad: "Failing", done: "Done" };

export function healthBadge(kind, obj) {
  const tone = health(kind, obj);
  return badge(HEALTH_TEXT[tone], tone);
}

// -- columns: [title, obj => cell] ---------------------------------------------------------------------

const AGE = ["Age", (o) => age(o.metadata.creationTimestamp)];

function ports(svc) {
  return ((svc.spec || {}).ports || [])
    .map((p) => `${p.port}${p.nodePort ? ":" + p.nodePort : ""}/${p.protocol || "TCP"}`).join(", ");
}

// An event's object, linked to its page when its kind is known.
export function involvedLink(event) {
  const io = event.involvedObject || {};
  const label = `${io.kind || ""}/${io.name || ""}`;
  const kind = io.kind && kindOf(io.apiVersion || "v1", io.kind);
  return kind && io.name ? h("a", { href: objectHref(kind, { namespace: io.namespace, name: io.name }) }, label) : label;
}

const COLUMNS = {
  Pod: [
    ["Ready", (p) => {
      const cs = (p.status || {}).containerStatuses || [];
      return `${cs.filter((c) => c.ready).length}/${(p.spec.containers || []).length}`;
    }],
    ["Status", (p) => { const [text, tone] = podState(p); return badge(text, tone); }],
    ["Restarts", (p) => ((p.status || {}).containerStatuses || []).reduce((n, c) => n + (c.restartCount || 0), 0)],
    ["Node", (p) => p.spec.nodeName || ""],
    ["IP", (p) => (p.status || {}).podIP || ""],
    AGE,
  ],
  Deployment: [
    ["Ready", (d) => `${(d.status || {}).readyReplicas || 0}/${d.spec.replicas ?? 1}`],
    ["Up-to-date", (d) => (d.status || {}).updatedReplicas || 0],
    ["Available", (d) => (d.status || {}).availableReplicas || 0],
    ["Health", null],
    AGE,
  ],
  ReplicaSet: [
    ["Desired", (r) => r.spec.replicas ?? 1],
    ["Current", (r) => (r.status || {}).replicas || 0],
    ["Ready", (r) => (r.status || {}).readyReplicas || 0],
    AGE,
  ],
  StatefulSet: [
    ["Ready", (s) => `${(s.status || {}).readyReplicas || 0}/${s.spec.replicas ?? 1}`],
    ["Health", null],
    AGE,
  ],
  DaemonSet: [
    ["Desired", (d) => (d.status || {}).desiredNumberScheduled || 0],
    ["Current", (d) => (d.status || {}).currentNumberScheduled || 0],
    ["Ready", (d) => (d.status || {}).numberReady || 0],
    ["Available", (d) => (d.status || {}).numberAvailable || 0],
    AGE,
  ],
  Job: [
    ["Completions", (j) => `${(j.status || {}).succeeded || 0}/${j.spec.completions ?? 1}`],
    ["Health", null],
    AGE,
  ],
  CronJob: [
    ["Schedule", (c) => c.spec.schedule],
    ["Suspend", (c) => String(!!c.spec.suspend)],
    ["Active", (c) => ((c.status || {}).active || []).length],
    ["Last schedule", (c) => age((c.status || {}).lastScheduleTime)],
    AGE,
  ],
  Service: [
    ["Type", (s) => s.spec.type || "ClusterIP"],
    ["Cluster IP", (s) => s.spec.clusterIP || ""],
    ["Ports", ports],
    AGE,
  ],
  ConfigMap: [["Data", (c) => Object.keys(c.data || {}).length + Object.keys(c.binaryData || {}).length], AGE],
  Secret: [["Type", (s) => s.type || "Opaque"], ["Data", (s) => Object.keys(s.data || {}).length], AGE],
  Event: [
    ["Type", (e) => badge(e.type || "Normal", e.type === "Warning" ? "bad" : "neutral")],
    ["Reason", (e) => e.reason || ""],
    ["Object", (e) => involvedLink(e)],
    ["Message", (e) => e.message || ""],
    ["Last seen", (e) => age(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp)],
  ],
  Node: [
    ["Status", (n) => ((cond(n, "Ready") || {}).status === "True" ? badge("Ready", "ok") : badge("NotReady", "bad"))],
    ["Roles", (n) => Object.keys(n.metadata.labels || {}).filter((l) => l.startsWith("node-role.kubernetes.io/"))
      .map((l) => l.split("/")[1]).join(",") || "<none>"],
    ["Version", (n) => ((n.status || {}).nodeInfo || {}).kubeletVersion || ""],
    AGE,
  ],
  Namespace: [["Status", (n) => (n.status || {}).phase || ""], AGE],
};

export function columns(kind) {
  return (COLUMNS[kind.kind] || [AGE]).map(([title, cell]) => [title, cell || ((o) => healthBadge(kind, o))]);
}

// -- the built-in kinds ----------------------------------------------------------------------------------

function kind(group, version, plural, k, namespaced, title, section) {
  return { group, version, plural, kind: k, namespaced, title, section };
}

export const BUILTIN = [
  kind("", "v1", "pods", "Pod", true, "Pods", "Workloads"),
  kind("apps", "v1", "deployments", "Deployment", true, "Deployments", "Workloads"),
  kind("apps", "v1", "replicasets", "ReplicaSet", true, "ReplicaSets", "Workloads"),
  kind("apps", "v1", "statefulsets", "StatefulSet", true, "StatefulSets", "Workloads"),
  kind("apps", "v1", "daemonsets", "DaemonSet", true, "DaemonSets", "Workloads"),
  kind("batch", "v1", "jobs", "Job", true, "Jobs", "Workloads"),
  kind("batch", "v1", "cronjobs", "CronJob", true, "CronJobs", "Workloads"),
  kind("", "v1", "services", "Service", true, "Services", "Network"),
  kind("", "v1", "configmaps", "ConfigMap", true, "ConfigMaps", "Config"),
  kind("", "v1", "secrets", "Secret", true, "Secrets", "Config"),
  kind("", "v1", "events", "Event", true, "Events", "Cluster"),
  kind("", "v1", "nodes", "Node", false, "Nodes", "Cluster"),
  kind("", "v1", "namespaces", "Namespace", false, "Namespaces", "Cluster"),
];

export const customKinds = [];

export const otherKinds = [];

// "ControllerRevisions", "NetworkPolicies", "Endpoints": the kind in the plural, as a heading.
function title(plural, kindName) {
  if (plural === kindName.toLowerCase()) return kindName;
  if (/[^aeiou]y$/.test(kindName)) return kindName.slice(0, -1) + "ies";
  if (/(s|x|ch|sh)$/.test(kindName)) return kindName + "es";
  return kindName + "s";
}

export function customKind(crd) {
  const spec = crd.spec || {};
  const served = (spec.versions || []).filter((v) => v.served);
  const version = (served.find((v) => v.storage) || served[0] || {}).name || "v1";
  return kind(spec.group, version, spec.names.plural, spec.names.kind, spec.scope !== "Cluster",
    title(spec.names.plural, spec.names.kind), "Custom resources");
}

// Every other listable type the apiserver serves (aggregated discovery, preferred versions), so nothing
// served is out of reach: leases, endpointslices, storage classes ... get the generic list and page.
export function discoveredKinds(documents) {
  const found = [];
  for (const doc of documents) {
    for (const item of (doc && doc.items) || []) {
      const group = (item.metadata || {}).name || "";
      const preferred = (item.versions || [])[0];
      if (!preferred) continue;
      for (const res of preferred.resources || []) {
        const verbs = res.verbs || [];
        const kindName = (res.responseKind || {}).kind;
        if (!kindName || !verbs.includes("list") || !verbs.includes("watch")) continue;
        found.push(kind(group, preferred.version, res.resource, kindName, res.scope === "Namespaced",
          title(res.resource, kindName), "More resources"));
      }
    }
  }
  return found;
}

export function findKind(group, version, plural) {
  const all = [...BUILTIN, ...customKinds, ...otherKinds];
  return all.find((k) => k.group === group && k.version === version && k.plural === plural)
    || all.find((k) => k.group === group && k.plural === plural);
}

export function kindOf(apiVersion, kindName) {
  const group = apiVersion.includes("/") ? apiVersion.split("/")[0] : "";
  return [...BUILTIN, ...customKinds, ...otherKinds].find((k) => k.kind === kindName && k.group === group) || null;
}

// What a kind's objects own (for the detail page's "Owns" list).
export const CHILDREN = {
  Deployment: ["apps", "v1", "replicasets"],
  ReplicaSet: ["", "v1", "pods"],
  StatefulSet: ["", "v1", "pods"],
  DaemonSet: ["", "v1", "pods"],
  Job: ["", "v1", "pods"],
  CronJob: ["batch", "v1", "jobs"],
};
