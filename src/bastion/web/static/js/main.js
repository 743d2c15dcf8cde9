// Progressive enhancement only: every page works without this file.
// Each feature is a small module, loaded when the page has something for it.
const features = [
  ["[data-confirm]", "./confirm.js"],
  ["[data-copy]", "./copy.js"],
  ["[data-fragment-token]", "./fragment.js"],
  ["[data-passkey]", "./passkey.js"],
];

for (const [selector, module] of features) {
  if (document.querySelector(selector)) {
    import(module).then((loaded) => loaded.enhance(document));
  }
}
