// What the user chose that outlives a page: the namespace (remembered across visits) and list filters.
"use strict";

export const state = {
  namespace: localStorage.getItem("kbox-dashboard-namespace") ?? "default",
  filters: {},
  labels: {},
  setNamespace(ns) {
    this.namespace = ns;
    localStorage.setItem("kbox-dashboard-namespace", ns);
  },
};
