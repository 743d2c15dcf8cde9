// Starts Swagger UI on /docs. A file of its own, not an inline script, so the
// docs Content-Security-Policy can say `script-src 'self'`.
"use strict";

window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // The default validator badge is an image from another host: offline
    // docs load nothing from elsewhere (and the CSP would block it).
    validatorUrl: null,
    // Tokens stay in this tab's memory, never in localStorage.
    persistAuthorization: false,
    displayRequestDuration: true,
  });
});
