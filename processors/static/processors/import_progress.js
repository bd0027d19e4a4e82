/* The import progress page: polls the job's status and keeps "rows done / total" current.
 * When the job has finished, the page is loaded again, and the server shows the outcome
 * (the result of a committed import, or the problems of a failed one). Without this file the page
 * still works: it says where the job is, with a link to look again. */
(function () {
  "use strict";
  var box = document.querySelector("[data-import-job]");
  if (!box || !window.fetch) return;
  var statusUrl = box.getAttribute("data-status-url");
  var pageUrl = box.getAttribute("data-page-url");
  var bar = box.querySelector("progress");
  var done = box.querySelector("[data-job-done]");
  var total = box.querySelector("[data-job-total]");
  var label = box.querySelector("[data-job-status]");
  var delay = 1000;

  function show(job) {
    if (label) label.textContent = job.status_label;
    if (done) done.textContent = String(job.rows_done);
    if (total && job.rows_total !== null) total.textContent = String(job.rows_total);
    if (bar && job.rows_total) {
      bar.max = job.rows_total;
      bar.value = job.finished ? job.rows_total : job.rows_done;
    }
  }

  function poll() {
    fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (job) {
        show(job);
        if (job.finished) {
          window.location.assign(pageUrl);
        } else {
          delay = 1000;
          window.setTimeout(poll, delay);
        }
      })
      .catch(function () {
        // A restarting server or a dropped connection: try again, less often.
        delay = Math.min(delay * 2, 10000);
        window.setTimeout(poll, delay);
      });
  }

  window.setTimeout(poll, delay);
})();
