// The language switcher submits itself when a language is chosen (no inline handler: the pages'
// Content-Security-Policy runs scripts from files only).
(function () {
  "use strict";
  const select = document.getElementById("lang-select");
  if (select) select.addEventListener("change", () => select.form.submit());
})();
