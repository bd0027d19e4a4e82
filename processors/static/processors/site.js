/* Processor register: small progressive enhancements. Every page works without this file. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function setBusy(button, label) {
    if (!button) return;
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    button.innerHTML = '<span class="spinner" aria-hidden="true"></span>';
    button.appendChild(document.createTextNode(label || button.textContent));
  }

  document.addEventListener("click", function (event) {
    var print = event.target.closest("[data-print]");
    if (print) window.print();
    var copy = event.target.closest("[data-copy]");
    if (copy && navigator.clipboard) {
      var source = document.querySelector(copy.getAttribute("data-copy"));
      navigator.clipboard.writeText(source.value).then(function () {
        copy.textContent = "✓";
      });
    }
  });

  // Long-running posts (the real import): the button shows what is happening and cannot be pressed twice.
  document.querySelectorAll("form[data-busy]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      // Disabled after the event, so the browser still sends the form.
      setTimeout(function () { setBusy(button, button.getAttribute("data-busy-label")); }, 0);
    });
  });

  // Filter forms leave "any" out of the address, so links and exports stay short and readable.
  document.querySelectorAll("form.filters").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("input, select").forEach(function (field) {
        if ((field.tagName === "SELECT" || field.type === "search" || field.type === "text" || !field.type) && !field.value) {
          field.disabled = true;
        }
      });
    });
  });

  // Filters fold away on a phone unless they hold an error.
  if (window.matchMedia && window.matchMedia("(max-width: 959px)").matches) {
    document.querySelectorAll("details[data-collapse-narrow]").forEach(function (details) {
      if (!details.querySelector(".error")) details.open = false;
    });
  }

  // The upload: a real progress bar while the file travels, then "checking" while the dry run runs.
  var upload = document.querySelector("form[data-upload]");
  if (upload && window.FormData && window.XMLHttpRequest) {
    upload.addEventListener("submit", function (event) {
      if (upload.getAttribute("data-plain")) return;
      event.preventDefault();
      var button = upload.querySelector("button[type=submit]");
      var area = upload.querySelector(".progress-area");
      var bar = area.querySelector("progress");
      var status = upload.querySelector(".status");
      var request = new XMLHttpRequest();
      request.open("POST", upload.action || window.location.href);
      request.setRequestHeader("Accept", "application/json");
      area.hidden = false;
      setBusy(button, button.getAttribute("data-busy-label"));
      request.upload.addEventListener("progress", function (progress) {
        if (!progress.lengthComputable) return;
        var percent = Math.round((100 * progress.loaded) / progress.total);
        bar.value = percent;
        status.textContent = percent + "%";
      });
      request.upload.addEventListener("load", function () {
        bar.removeAttribute("value");
        status.textContent = button.getAttribute("data-checking-label");
      });
      function plainSubmit() {
        // Anything unexpected (a form error, a lost connection): let the browser post the form itself.
        upload.setAttribute("data-plain", "1");
        upload.submit();
      }
      request.addEventListener("load", function () {
        var next = null;
        try { next = JSON.parse(request.responseText).next; } catch (error) { next = null; }
        if (request.status === 200 && next) {
          status.textContent = button.getAttribute("data-checking-label");
          window.location.assign(next);
        } else {
          plainSubmit();
        }
      });
      request.addEventListener("error", plainSubmit);
      request.send(new FormData(upload));
    });
  }
})();
