// Progressive enhancements only: every page works without JavaScript.
document.addEventListener("submit", function (event) {
  // A second click on a submit button while the first request is in flight does nothing.
  var form = event.target;
  if (form.dataset.submitting === "1") {
    event.preventDefault();
    return;
  }
  form.dataset.submitting = "1";
  window.setTimeout(function () { form.dataset.submitting = ""; }, 8000);
});

// htmx requests end without a page load, so release the guard when the response arrives.
document.addEventListener("htmx:afterRequest", function (event) {
  var form = event.target.closest ? event.target.closest("form") : null;
  if (form) { form.dataset.submitting = ""; }
});

// When htmx replaces the element that had focus, keyboard and screen-reader users would be
// dropped at the top of the page; move focus to the element the new content marks instead.
document.addEventListener("htmx:afterSettle", function () {
  var next = document.querySelector("[data-focus-after-swap]");
  if (next) {
    next.removeAttribute("data-focus-after-swap");
    next.focus();
  }
});
