// The sign-out page of OpenID Connect Front-Channel Logout: once every application's logout page
// has loaded in its hidden frame (or after a few seconds, if one does not answer), continue to
// the application that asked for the sign-out. Without JavaScript the citizen follows the link.
(function () {
  var link = document.querySelector("[data-logout-continue]");
  if (!link) { return; }
  var frames = document.querySelectorAll("iframe[data-logout-frame]");
  var waiting = frames.length;
  var gone = false;
  function go() {
    if (gone) { return; }
    gone = true;
    window.location.assign(link.href);
  }
  Array.prototype.forEach.call(frames, function (frame) {
    frame.addEventListener("load", function () {
      waiting -= 1;
      if (waiting <= 0) { go(); }
    });
  });
  window.setTimeout(go, 4000);
})();
