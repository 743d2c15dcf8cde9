// Buttons marked data-copy="#id" copy that element's text (shown only with script).
export function enhance(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    const target = root.querySelector(button.dataset.copy);
    if (!target || !navigator.clipboard) {
      continue;
    }
    button.hidden = false;
    button.addEventListener("click", async () => {
      const label = button.textContent;
      try {
        await navigator.clipboard.writeText(target.innerText.trim());
        button.textContent = "Copied";
      } catch {
        button.textContent = "Copy failed";
      }
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  }
}
