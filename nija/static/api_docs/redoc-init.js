// Starts ReDoc on the schema address the page names (no inline script: the pages run under a strict CSP).
"use strict";
(function () {
  var container = document.getElementById("redoc-container");
  Redoc.init(container.dataset.schemaUrl, { hideDownloadButton: false }, container);
})();
