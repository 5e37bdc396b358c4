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
