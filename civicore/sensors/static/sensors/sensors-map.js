/* The devices of the sensor dashboard on a map. The devices come from the JSON data block
   #device-map-data (the same devices as the table under the map, so the page is complete
   without this script). No inline script (CSP); every text is inserted as text. Status is shown
   by shape as well as colour. */
(function () {
  "use strict";

  var container = document.getElementById("device-map");
  var source = document.getElementById("device-map-data");
  if (!container || !source || typeof L === "undefined") {
    return;
  }
  var data = container.dataset;
  var devices;
  try {
    devices = JSON.parse(source.textContent || "[]");
  } catch (error) {
    return;
  }

  function numbers(text) {
    return String(text || "").split(",").map(Number);
  }

  var center = numbers(data.center);
  var bounds = numbers(data.bounds);
  var map = L.map(container, { scrollWheelZoom: false, keyboard: true });
  map.setView([center[0], center[1]], 12);
  if (bounds.length === 4 && bounds.every(isFinite)) {
    map.setMaxBounds(L.latLngBounds([bounds[0], bounds[1]], [bounds[2], bounds[3]]).pad(0.5));
  }
  L.tileLayer(data.tileUrl, { maxZoom: 19, attribution: data.tileAttribution || "" }).addTo(map);

  var styles = {
    online: { shape: "circle", color: "#00734a", fill: "#00a91c", weight: 2 },
    offline: { shape: "square", color: "#8c3d10", fill: "#e66f0e", weight: 2 },
    never_seen: { shape: "ring", color: "#565c65", fill: "#ffffff", weight: 4 },
    revoked: { shape: "cross", color: "#1b1b1b", fill: "#1b1b1b", weight: 3 }
  };

  function marker(device) {
    var style = styles[device.status] || styles.never_seen;
    var latlng = L.latLng(device.lat, device.lng);
    if (style.shape === "circle" || style.shape === "ring") {
      return L.circleMarker(latlng, {
        radius: 8, color: style.color, weight: style.weight, fillColor: style.fill,
        fillOpacity: 1, keyboard: true
      });
    }
    var html = document.createElement("span");
    html.className = "sensor-marker sensor-marker--" + style.shape;
    return L.marker(latlng, {
      keyboard: true,
      title: device.name,
      // 24 px: large enough to select (WCAG 2.5.8), the shape drawn inside it.
      icon: L.divIcon({ className: "sensor-marker-icon sensor-marker-icon--" + device.status, html: html, iconSize: [24, 24] })
    });
  }

  function popup(device) {
    var box = document.createElement("div");
    var name = document.createElement("p");
    name.className = "text-bold margin-0";
    name.textContent = device.name + " (" + device.id + ")";
    var state = document.createElement("p");
    state.className = "margin-0";
    state.textContent = device.status_label;
    var link = document.createElement("a");
    if (typeof device.url === "string" && device.url.charAt(0) === "/") {
      link.href = device.url;
    }
    link.textContent = data.labelOpen;
    box.appendChild(name);
    box.appendChild(state);
    box.appendChild(link);
    return box;
  }

  var layer = L.featureGroup();
  devices.forEach(function (device) {
    if (!isFinite(device.lat) || !isFinite(device.lng)) {
      return;
    }
    var item = marker(device);
    item.bindPopup(popup(device));
    var tip = document.createElement("span");
    tip.textContent = device.name + " · " + device.status_label;
    item.bindTooltip(tip);
    layer.addLayer(item);
  });
  layer.addTo(map);
  if (layer.getLayers().length) {
    map.fitBounds(layer.getBounds().pad(0.2), { maxZoom: 16 });
  }
})();
