// The labelling page's keys and quick posts. Without this script the page still works: its buttons post
// the form to /label. With it, a click or a key (1, 2, t, s) posts JSON to /api/labels with the page's
// CSRF token and the seconds the pair was on screen, then loads the next pair.
(function () {
  "use strict";
  const form = document.getElementById("label-form");
  if (!form) return;
  const base = document.querySelector('meta[name="base"]').content;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("status");
  const shownAt = performance.now();
  let busy = false;

  async function send(choice) {
    if (busy) return;
    busy = true;
    const tags = Array.from(form.querySelectorAll('input[name="tags"]:checked')).map((box) => box.value);
    const body = {
      pair_id: form.dataset.pair,
      choice: choice,
      tags: tags,
      seconds: (performance.now() - shownAt) / 1000,
    };
    status.textContent = "Saving…";
    try {
      const response = await fetch(base + "/api/labels", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      if (!response.ok) {
        const detail = await response.json().catch(() => ({}));
        throw new Error(detail.detail || response.statusText);
      }
      window.location.assign(base + "/");
    } catch (error) {
      status.textContent = "Not saved: " + error.message;
      busy = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = event.submitter;
    if (button && button.dataset.choice) send(button.dataset.choice);
  });

  const keys = { "1": "1", "2": "2", t: "tie", s: "skip" };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const choice = keys[event.key.toLowerCase()];
    if (choice) {
      event.preventDefault();
      send(choice);
    }
  });
  form.dataset.ready = "1"; // keys work from now on (the browser test waits for this)
})();
