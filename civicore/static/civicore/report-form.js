// The report form's map: click to place the pin, "Use my location", and the coordinate inputs
// kept in step with the pin. The inputs are the accessible fallback and work without this script;
// the map works without tiles (clicking still places the pin).
(function () {
  "use strict";
  var box = document.getElementById("report-map");
  var latInput = document.getElementById("id_latitude");
  var lonInput = document.getElementById("id_longitude");
  var status = document.getElementById("map-status");
  var locate = document.getElementById("use-my-location");
  if (!box || !latInput || !lonInput) { return; }

  function say(text) { if (status) { status.textContent = text || ""; } }
  function numbers(text) { return (text || "").split(",").map(function (part) { return parseFloat(part); }); }

  var bounds = numbers(box.dataset.bounds); // south, west, north, east
  function inside(lat, lon) {
    return bounds.length === 4 && lat >= bounds[0] && lat <= bounds[2] && lon >= bounds[1] && lon <= bounds[3];
  }

  function setInputs(lat, lon) {
    latInput.value = lat.toFixed(6);
    lonInput.value = lon.toFixed(6);
    // The "already reported?" check listens for changes of these inputs.
    latInput.dispatchEvent(new Event("change", { bubbles: true }));
    lonInput.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // Moves the pin once the map exists; without Leaflet the inputs alone hold the place.
  var place = function () {};

  if (locate && "geolocation" in navigator) { locate.hidden = false; }
  if (locate) {
    locate.addEventListener("click", function () {
      if (!("geolocation" in navigator)) { say(box.dataset.msgDenied); return; }
      navigator.geolocation.getCurrentPosition(function (position) {
        var lat = position.coords.latitude;
        var lon = position.coords.longitude;
        place(lat, lon, 17);
        setInputs(lat, lon);
        say(inside(lat, lon) ? box.dataset.msgLocated : box.dataset.msgOutside);
      }, function () {
        say(box.dataset.msgDenied);
        latInput.focus();
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
    });
  }

  if (typeof window.L === "undefined") { return; }
  var L = window.L;
  if (box.dataset.images) { L.Icon.Default.imagePath = box.dataset.images; }
  var center = numbers(box.dataset.center);
  var map = L.map(box, { keyboard: true }).setView(center.length === 2 ? center : [21.0285, 105.8542], 6);
  if (bounds.length === 4) {
    map.fitBounds([[bounds[0], bounds[1]], [bounds[2], bounds[3]]]);
  }
  if (box.dataset.tileUrl) {
    // Tiles may be unreachable (offline, blocked): the map still takes clicks.
    L.tileLayer(box.dataset.tileUrl, { attribution: box.dataset.tileAttribution || "", maxZoom: 19 }).addTo(map);
  }
  var marker = null;

  place = function (lat, lon, zoom) {
    if (!isFinite(lat) || !isFinite(lon)) { return; }
    if (marker) { marker.setLatLng([lat, lon]); } else { marker = L.marker([lat, lon], { keyboard: false }).addTo(map); }
    if (zoom) { map.setView([lat, lon], Math.max(map.getZoom(), zoom)); }
  };

  map.on("click", function (event) {
    // A tap on the whole-country view is kilometres wide: zoom in around the pin so the next tap
    // can put it on the right street.
    place(event.latlng.lat, event.latlng.lng, map.getZoom() < 15 ? 16 : 0);
    setInputs(event.latlng.lat, event.latlng.lng);
    say(inside(event.latlng.lat, event.latlng.lng) ? box.dataset.msgPinned : box.dataset.msgOutside);
  });

  function fromInputs() {
    var lat = parseFloat((latInput.value || "").replace(",", "."));
    var lon = parseFloat((lonInput.value || "").replace(",", "."));
    if (isFinite(lat) && isFinite(lon)) { place(lat, lon, 16); }
  }
  latInput.addEventListener("input", fromInputs);
  lonInput.addEventListener("input", fromInputs);
  fromInputs();

}());
