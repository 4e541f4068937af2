// Starts Swagger UI on /docs from files the broker serves itself (no CDN, no inline script).
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    // Off: with it, each operation's path is a link inside its toggle button (axe: nested-interactive).
    deepLinking: false,
    persistAuthorization: false,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
  });
  // Swagger UI's request-body editor has no label (axe: label): name it when it appears.
  new MutationObserver(function () {
    var editors = root.querySelectorAll("textarea.body-param__text:not([aria-label])");
    for (var i = 0; i < editors.length; i++) editors[i].setAttribute("aria-label", "Request body");
  }).observe(root, { childList: true, subtree: true });
})();
