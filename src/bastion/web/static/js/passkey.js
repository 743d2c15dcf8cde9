// The WebAuthn ceremonies of the pages. A form marked data-passkey="create"
// (add a passkey) or "request" (sign in, or the second step) fetches its
// options from data-options (same origin, CSRF token in the body), runs the
// ceremony, and submits the credential's JSON in the form's hidden field.
// Forms stay hidden where the browser has no passkey support.
const supported =
  window.PublicKeyCredential &&
  typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
  typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";

async function options(form) {
  const body = new URLSearchParams({ csrf: form.elements.csrf.value });
  if (form.elements.mfa_token) {
    body.set("mfa_token", form.elements.mfa_token.value);
  }
  const response = await fetch(form.dataset.options, {
    method: "POST",
    body,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  if (!response.ok) {
    throw new Error(`options: ${response.status}`);
  }
  return response.json();
}

async function ceremony(form) {
  const json = await options(form);
  if (form.dataset.passkey === "create") {
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(json);
    return navigator.credentials.create({ publicKey });
  }
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(json);
  return navigator.credentials.get({ publicKey });
}

export function enhance(root) {
  if (!supported) {
    return;
  }
  for (const form of root.querySelectorAll("form[data-passkey]")) {
    form.hidden = false;
    const field = form.elements.credential || form.elements.webauthn;
    form.addEventListener("submit", async (event) => {
      if (field.value) {
        return;
      }
      event.preventDefault();
      try {
        const credential = await ceremony(form);
        field.value = JSON.stringify(credential.toJSON());
        form.submit();
      } catch (error) {
        const note = form.querySelector(".error") || form.appendChild(document.createElement("p"));
        note.className = "error";
        note.setAttribute("role", "alert");
        note.textContent = "The passkey step did not complete. Try again.";
        console.warn(error);
      }
    });
  }
}
