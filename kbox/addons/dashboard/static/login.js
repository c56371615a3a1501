// Says why the last login attempt failed (the server redirects here with ?error=...).
"use strict";
(function () {
  const reasons = {
    token: "The apiserver did not accept that token.",
    expired: "That login link was already used or has expired: run kbox dashboard again.",
  };
  const error = new URLSearchParams(location.search).get("error");
  const box = document.getElementById("login-error");
  if (error && box) {
    box.textContent = reasons[error] || "Log in failed.";
    box.hidden = false;
  }
  document.getElementById("token").focus();
})();
