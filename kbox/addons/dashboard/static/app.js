// The page's frame: the navigation (with the namespace choice and every CRD's resources) and the router
// that draws one page per location hash. Each page registers its cleanups (watches, streams) with onLeave.
"use strict";

import { LiveList, clear, h, leavePage } from "./core.js";
import { detailPage } from "./detail.js";
import { BUILTIN, customKind, customKinds, listHref } from "./kinds.js";
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

function drawNav() {
  const sections = new Map();
  for (const kind of [...BUILTIN, ...customKinds]) {
    if (!sections.has(kind.section)) sections.set(kind.section, []);
    sections.get(kind.section).push(navLink(listHref(kind), kind.title));
  }
  clear(nav, h("ul", {}, navLink("#/overview", "Overview"), navLink("#/new", "Create from YAML")),
    [...sections].map(([title, links]) => [h("h2", {}, title), h("ul", {}, links)]));
  markCurrent();
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
  const heading = main.querySelector("h1");
  if (heading && document.activeElement === document.body) heading.setAttribute("tabindex", "-1");
}

function drawNamespaces(items) {
  const names = items.map((n) => n.metadata.name).sort();
  if (state.namespace && !names.includes(state.namespace)) names.push(state.namespace);
  clear(nsSelect, h("option", { value: "" }, "All namespaces"), names.map((n) => h("option", { value: n }, n)));
  nsSelect.value = state.namespace;
}

function boot() {
  drawNav();
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
    .then((who) => { document.getElementById("user").textContent = who.username || ""; });
  window.addEventListener("hashchange", route);
  route();
}

boot();
