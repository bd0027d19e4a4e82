/* Admin helpers, CSP-safe (a static file, no inline code):
   - a long changelist filter (compact_filter.html) gets a box that narrows its list as you type;
   - a long multiple <select> of countries (an operation's destinations and places of processing) gets a
     search box above it that hides the options not matching, and a line listing what is chosen.
   Every page works without this file: the lists are plain links and a plain multiple select. */
(function () {
  "use strict";

  function normalise(text) {
    return (text || "").toLowerCase().replace(/\s+/g, " ").trim();
  }

  document.querySelectorAll("[data-filter-search]").forEach(function (input) {
    var list = input.parentNode.querySelector(".compact-filter-list");
    if (!list) return;
    input.hidden = false;
    input.addEventListener("input", function () {
      var wanted = normalise(input.value);
      list.querySelectorAll("li").forEach(function (item) {
        item.hidden = wanted !== "" && normalise(item.textContent).indexOf(wanted) === -1;
      });
    });
  });

  var words = document.getElementById("searchable-select-words");
  var placeholder = words ? words.getAttribute("data-placeholder") : "";
  var chosenLabel = words ? words.getAttribute("data-chosen") : "";
  var countrySelects = "select[data-searchable-select], select[multiple][name=destination_countries], " +
    "select[multiple][name=processing_countries]";
  document.querySelectorAll(countrySelects).forEach(function (select) {
    var search = document.createElement("input");
    search.type = "search";
    search.className = "searchable-select-search vTextField";
    search.placeholder = placeholder;
    search.setAttribute("aria-label", placeholder);
    search.setAttribute("aria-controls", select.id);
    var chosen = document.createElement("p");
    chosen.className = "searchable-select-chosen help";
    chosen.setAttribute("aria-live", "polite");
    // One column: the box, the list, what is chosen (the admin lays a field's parts out in a row).
    var wrapper = document.createElement("div");
    wrapper.className = "searchable-select";
    select.parentNode.insertBefore(wrapper, select);
    wrapper.appendChild(search);
    wrapper.appendChild(select);
    wrapper.appendChild(chosen);

    function showChosen() {
      var names = Array.prototype.filter.call(select.options, function (option) { return option.selected; })
        .map(function (option) { return option.textContent.trim(); });
      chosen.textContent = chosenLabel + " " + (names.join(", ") || "—");
    }

    search.addEventListener("input", function () {
      var wanted = normalise(search.value);
      Array.prototype.forEach.call(select.options, function (option) {
        var text = normalise(option.textContent + " " + option.value);
        option.hidden = wanted !== "" && !option.selected && text.indexOf(wanted) === -1;
      });
    });
    // Enter in the search box must not submit the admin form.
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault();
    });
    select.addEventListener("change", showChosen);
    showChosen();
  });
})();
