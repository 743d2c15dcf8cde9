// Mail links carry their token in the fragment (#token=...), which browsers
// never send to a server: no access log or Referer ever holds it. This puts
// it in the form's field and removes it from the address bar and history.
export function enhance(root) {
  const token = new URLSearchParams(window.location.hash.slice(1)).get("token");
  if (!token) {
    return;
  }
  for (const field of root.querySelectorAll("[data-fragment-token]")) {
    const input = field.querySelector("input");
    input.value = token;
    input.type = "hidden";
    field.hidden = true;
  }
  history.replaceState(null, "", window.location.pathname + window.location.search);
}
