/* Site-wide enhancements (the pages work without them). */
(function () {
  "use strict";
  // The header's currency switcher applies on change; without JavaScript its button does.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { if (select.form) select.form.submit(); });
  });
})();
