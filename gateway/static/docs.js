// Starts Swagger UI on the gateway's merged document. A file of its own, not an inline script,
// so that the page runs under `script-src 'self'`.
window.addEventListener("load", function () {
  SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // Its default sends the document to an outside validator service: everything stays local.
    validatorUrl: null,
  });
});
