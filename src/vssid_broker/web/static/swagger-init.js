// Starts Swagger UI on /docs from files the broker serves itself (no CDN, no inline script).
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    layout: "BaseLayout",
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
