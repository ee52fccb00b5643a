// Starts Swagger UI on the docs page. A file of its own (not an inline script), so
// that the page's Content-Security-Policy can allow scripts from 'self' only.
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: false,
  // No badge from the public validator: nothing is loaded from elsewhere.
  validatorUrl: null
});
