/* The public map of problem reports (/reports/map/): draws the reports of the GeoJSON feed named
   by #public-map's data-feed-url. The table under the map lists the same reports, so the page is
   complete without this script. No inline script (CSP): settings come from data attributes, and
   every text from the feed is inserted as text, never as HTML. */
(function () {
  "use strict";

  var container = document.getElementById("public-map");
  if (!container || typeof L === "undefined") {
    return;
  }
  var data = container.dataset;
  var status = document.getElementById("public-map-status");

  function numbers(text) {
    return String(text || "").split(",").map(Number);
  }

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  var bounds = numbers(data.bounds);
  var center = numbers(data.center);
  var map = L.map(container, { scrollWheelZoom: false, keyboard: true });
  map.setView([center[0], center[1]], 12);
  if (bounds.length === 4 && bounds.every(isFinite)) {
    map.setMaxBounds(L.latLngBounds([bounds[0], bounds[1]], [bounds[2], bounds[3]]).pad(0.5));
  }
  L.tileLayer(data.tileUrl, { maxZoom: 19, attribution: data.tileAttribution || "" }).addTo(map);

  function row(list, label, value) {
    var term = document.createElement("dt");
    term.className = "text-bold";
    term.textContent = label;
    var detail = document.createElement("dd");
    detail.className = "margin-left-0 margin-bottom-1";
    detail.textContent = value;
    list.appendChild(term);
    list.appendChild(detail);
  }

  function day(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) {
      return iso || "";
    }
    return when.toLocaleDateString(document.documentElement.lang || undefined);
  }

  function popup(properties) {
    var box = document.createElement("div");
    var list = document.createElement("dl");
    list.className = "margin-0";
    row(list, data.labelReference, properties.reference);
    row(list, data.labelCategory, properties.category_name);
    row(list, data.labelStatus, properties.status_label);
    row(list, data.labelReported, day(properties.created));
    row(list, data.labelUpdated, day(properties.updated));
    box.appendChild(list);
    (properties.photos || []).slice(0, 3).forEach(function (url, index) {
      if (typeof url !== "string" || url.charAt(0) !== "/") {
        return; // only this site's published photos
      }
      var image = document.createElement("img");
      image.src = url;
      image.alt = data.labelPhoto + " " + properties.reference + " (" + (index + 1) + ")";
      image.width = 160;
      image.loading = "lazy";
      image.className = "display-block margin-top-1";
      box.appendChild(image);
    });
    return box;
  }

  function marker(feature, latlng) {
    var open = Boolean(feature.properties && feature.properties.open);
    // Not by colour alone: open reports are filled circles, fixed ones rings.
    return L.circleMarker(latlng, {
      radius: 8,
      weight: open ? 2 : 4,
      color: open ? "#8c3d10" : "#00734a",
      fillColor: open ? "#e66f0e" : "#ffffff",
      fillOpacity: open ? 0.9 : 1,
      keyboard: true
    });
  }

  fetch(data.feedUrl, { headers: { Accept: "application/geo+json" }, credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("feed " + response.status);
      }
      return response.json();
    })
    .then(function (collection) {
      var layer = L.geoJSON(collection, {
        pointToLayer: marker,
        onEachFeature: function (feature, item) {
          var properties = feature.properties || {};
          item.bindPopup(popup(properties));
          var tip = document.createElement("span");
          tip.textContent = properties.reference + " · " + properties.status_label;
          item.bindTooltip(tip);
        }
      }).addTo(map);
      var count = (collection.features || []).length;
      if (count) {
        map.fitBounds(layer.getBounds().pad(0.1), { maxZoom: 16 });
      }
      say(container.getAttribute("aria-label") + ": " + count);
    })
    .catch(function () {
      var note = document.createElement("p");
      note.className = "usa-alert usa-alert--warning usa-alert--slim padding-1 margin-0";
      note.setAttribute("role", "alert");
      note.textContent = data.labelError;
      container.parentNode.insertBefore(note, container);
    });
})();
