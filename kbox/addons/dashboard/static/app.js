// The page's frame: the navigation (with the namespace choice and every CRD's resources) and the router
// that draws one page per location hash. Each page registers its cleanups (watches, streams) with onLeave.
"use strict";

import { LiveList, clear, h, k8s, leavePage } from "./core.js";
import { detailPage } from "./detail.js";
import { BUILTIN, customKind, customKinds, discoveredKinds, listHref, otherKinds } from "./kinds.js";
import { listPage, overviewPage } from "./lists.js";
import { state } from "./state.js";
import { execPage, logsPage, newPage } from "./tools.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav-links");
const nsSelect = document.getElementById("namespace");
const menu = document.getElementById("menu-toggle");

function navLink(href, label) {
  return h("li", {}, h("a", { href, dataset: { href } }, label));
}

const AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

function drawNav() {
  const sections = new Map();
  const shown = new Set();
  for (const kind of [...BUILTIN, ...customKinds]) {
    if (!sections.has(kind.section)) sections.set(kind.section, []);
    sections.get(kind.section).push(navLink(listHref(kind), kind.title));
    shown.add(`${kind.group}/${kind.plural}`);
  }
  const more = otherKinds.filter((k) => !shown.has(`${k.group}/${k.plural}`))
    .sort((a, b) => a.title.localeCompare(b.title));
  const wasOpen = nav.querySelector("details") && nav.querySelector("details").open;
  clear(nav, h("ul", {}, navLink("#/overview", "Overview"), navLink("#/new", "Create from YAML")),
    [...sections].map(([title, links]) => [h("h2", {}, title), h("ul", {}, links)]),
    more.length && h("details", { open: wasOpen || more.some((k) => location.hash.startsWith(listHref(k))) },
      h("summary", {}, "More resources"),
      h("ul", {}, more.map((k) => navLink(listHref(k), k.group ? `${k.title} (${k.group})` : k.title)))));
  markCurrent();
}

async function discover() {
  try {
    const documents = await Promise.all(["/api", "/apis"].map((p) => k8s("GET", p, undefined, undefined, AGGREGATED)));
    otherKinds.splice(0, otherKinds.length, ...discoveredKinds(documents));
    drawNav();
  } catch (err) {
    console.error("discovery failed", err);
  }
}

function markCurrent() {
  const hash = location.hash || "#/overview";
  for (const a of nav.querySelectorAll("a")) {
    const current = hash === a.dataset.href || hash.startsWith(a.dataset.href + "/") || hash.startsWith(a.dataset.href + "?");
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function route() {
  leavePage();
  markCurrent();
  document.body.classList.remove("menu-open");
  menu.setAttribute("aria-expanded", "false");
  const [path, search] = (location.hash.slice(1) || "/overview").split("?");
  const query = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  try {
    if (parts[0] === "r" && parts.length === 4) {
      listPage(main, parts[1] === "core" ? "" : parts[1], parts[2], parts[3]);
    } else if (parts[0] === "r" && parts.length === 6) {
      detailPage(main, parts[1] === "core" ? "" : parts[1], parts[2], parts[3], parts[4] === "-" ? "" : parts[4], parts[5]);
    } else if (parts[0] === "new") {
      newPage(main, query);
    } else if (parts[0] === "logs" && parts.length === 3) {
      logsPage(main, parts[1], parts[2], query);
    } else if (parts[0] === "exec" && parts.length === 3) {
      execPage(main, parts[1], parts[2], query);
    } else {
      overviewPage(main);
    }
  } catch (err) {
    console.error(err);
    clear(main, h("div.alert.error", { role: "alert" }, String(err)));
  }
  // After a navigation from the menu, move focus to the new page's heading (screen readers announce it;
  // Tab continues from there). Pages that focus something themselves (an editor, a terminal) keep it.
  const heading = main.querySelector("h1");
  const from = document.activeElement;
  if (heading && (from === document.body || nav.contains(from) || from === null)) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function drawNamespaces(items) {
  const names = items.map((n) => n.metadata.name).sort();
  if (state.namespace && !names.includes(state.namespace)) names.push(state.namespace);
  clear(nsSelect, h("option", { value: "" }, "All namespaces"), names.map((n) => h("option", { value: n }, n)));
  nsSelect.value = state.namespace;
}

function boot() {
  drawNav();
  discover();
  new LiveList("/api/v1/namespaces", {}, drawNamespaces);
  new LiveList("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", {}, (crds) => {
    customKinds.splice(0, customKinds.length, ...crds.map(customKind).sort((a, b) => a.title.localeCompare(b.title)));
    drawNav();
  });
  nsSelect.addEventListener("change", () => {
    state.setNamespace(nsSelect.value);
    route();
  });
  menu.addEventListener("click", () => {
    const open = document.body.classList.toggle("menu-open");
    menu.setAttribute("aria-expanded", String(open));
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName) && !document.querySelector(".terminal")) {
      const filter = document.getElementById("name-filter");
      if (filter) { e.preventDefault(); filter.focus(); }
    }
  });
  fetch("/_/whoami", { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : { username: "" }))
    .then((who) => { document.getElementById("user").textContent = who.username || ""; })
    .catch(() => { /* the name is cosmetic; a page that cannot reach its server says so elsewhere */ });
  window.addEventListener("hashchange", route);
  route();
}

boot();
