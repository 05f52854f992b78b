/* Site-wide enhancements (the pages work without them). */
(function () {
  "use strict";
  // The header's currency switcher applies on change; without JavaScript its button does.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { if (select.form) select.form.submit(); });
  });
  // A time zone not chosen yet: suggest the browser's (the patient can change it).
  document.querySelectorAll("select[data-browser-zone]").forEach(function (select) {
    if (select.value) return;
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone && select.querySelector('option[value="' + zone.replace(/"/g, "") + '"]')) select.value = zone;
    } catch (e) { /* an old browser: the patient chooses */ }
  });
})();
