// mailtickets console: a little plain JavaScript, no framework, no build step.
// 1. Forms with data-confirm ask before they submit (delete, discard, import).
// 2. The dry-run form (data-live) re-runs as you type or pick a file, and shows the report in place.
"use strict";

document.addEventListener("submit", function (event) {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

function liveDryRun(form) {
  const target = document.getElementById(form.dataset.target);
  let timer = null;
  let sequence = 0;
  async function run() {
    const mine = ++sequence;
    const response = await fetch(form.dataset.live, { method: "POST", body: new FormData(form), credentials: "same-origin" });
    if (mine !== sequence) return; // a newer run is on its way
    target.innerHTML = await response.text(); // the server's own escaped HTML fragment
  }
  function soon() {
    window.clearTimeout(timer);
    timer = window.setTimeout(run, 400);
  }
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    run();
  });
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-live]").forEach(liveDryRun);
  document.querySelectorAll("[data-back]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (window.history.length > 1) {
        event.preventDefault();
        window.history.back();
      }
    });
  });
});
