// Live progress of a sending campaign: poll the figures once a second, reload when done.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || box.dataset.status !== "sending") { return; }
  var bar = document.getElementById("progress-bar");
  function set(name, value) {
    document.querySelectorAll('[data-figure="' + name + '"]').forEach(function (el) {
      el.textContent = String(value);
    });
  }
  function poll() {
    fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (data) {
        bar.max = data.audience || 1;
        bar.value = data.audience ? data.done : 1;
        ["done", "audience", "percent", "sent", "failed", "unsubscribes"].forEach(function (k) { set(k, data[k]); });
        set("waiting", data.queued + data.sending);
        if (data.status !== "sending") { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 500);
})();
