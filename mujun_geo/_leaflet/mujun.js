/* mujun-geo web maps: layers, legends, search and status, for Leaflet 1.9 (offline). */
(function () {
  "use strict";
  var MG = (window.MG = window.MG || {});
  MG.index = [];
  MG.counts = {};

  function esc(v) {
    return String(v).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  MG.esc = esc;

  /* Rows of a data block: {"k": [keys], "v": [[values]], "g": [geometries]} in a
     <script type="application/json"> element. */
  var cache = {};
  MG.rows = function (id) {
    if (cache[id]) return cache[id];
    var d = JSON.parse(document.getElementById(id).textContent);
    var out = new Array(d.v.length);
    for (var i = 0; i < d.v.length; i++) {
      var p = {};
      for (var j = 0; j < d.k.length; j++) p[d.k[j]] = d.v[i][j];
      out[i] = { type: "Feature", properties: p, geometry: d.g ? d.g[i] : null };
    }
    cache[id] = out;
    return out;
  };

  /* Format one field spec [label, key, opts] of a feature's properties; "" when empty. */
  function fmt(p, f) {
    var v = p[f[1]], o = f[2] || {};
    if (v === null || v === undefined || v === "") return "";
    if (o.split) {
      v = String(v).split(o.split).filter(Boolean).map(function (s) {
        return (o.map && o.map[s]) || s;
      }).join("、");
    } else if (o.map) {
      v = o.map[v] !== undefined ? o.map[v] : v;
    } else if (o.pct) {
      v = (100 * v).toFixed(o.d === undefined ? 1 : o.d) + "%";
    } else if (typeof v === "number" && o.d !== undefined) {
      v = v.toLocaleString("zh-CN", { minimumFractionDigits: o.d, maximumFractionDigits: o.d });
    }
    return esc(v) + (o.u ? " " + esc(o.u) : "");
  }

  function card(p, spec) {
    var h = '<div class="mg-card">';
    if (spec.title) h += "<b>" + esc(spec.title[0]) + fmt(p, [null, spec.title[1]]) + "</b>";
    h += "<table>";
    (spec.fields || []).forEach(function (f) {
      var s = fmt(p, f);
      if (s !== "") h += "<tr><th>" + esc(f[0]) + "</th><td>" + s + "</td></tr>";
    });
    return h + "</table></div>";
  }
  MG.card = card;

  function colourOf(p, c) {
    if (!c) return null;
    var v = p[c.key];
    var col = c.map ? c.map[v] : c.list ? c.list[v] : undefined;
    return col === undefined ? c.other : col;
  }

  /* Polygon layer from a data block; cfg: data, filter {key, values}, color {key, map|list,
     other}, stroke, weight, fillOpacity, dash, tooltip, popup, legend, search, name. */
  MG.polygons = function (map, cfg) {
    var feats = MG.rows(cfg.data);
    if (cfg.filter) {
      var keep = {};
      cfg.filter.values.forEach(function (v) { keep[v] = true; });
      feats = feats.filter(function (f) { return keep[f.properties[cfg.filter.key]]; });
    }
    function style(f) {
      var fill = colourOf(f.properties, cfg.color);
      return {
        color: cfg.stroke || "#ffffff", weight: cfg.weight === undefined ? 0.6 : cfg.weight,
        opacity: 1, dashArray: cfg.dash || null, fill: !!fill || !!cfg.fillOpacity,
        fillColor: fill || cfg.stroke, fillOpacity: fill ? cfg.fillOpacity : (cfg.fillOpacity || 0)
      };
    }
    var pending = [];
    var layer = L.geoJSON(feats, {
      style: style,
      onEachFeature: function (f, l) {
        if (cfg.tooltip) l.bindTooltip(function () { return card(f.properties, cfg.tooltip); }, { sticky: true });
        if (cfg.popup) l.bindPopup(function () { return card(f.properties, cfg.popup); }, { maxWidth: 360 });
        if (cfg.search) {
          var keys = cfg.search.map(function (k) { return f.properties[k]; }).filter(Boolean);
          if (keys.length) pending.push({
            text: keys.join(" ").toLowerCase(), label: String(keys[0]),
            sub: keys.slice(1).join(" "), layer: l
          });
        }
      }
    });
    pending.forEach(function (it) { it.group = layer; MG.index.push(it); });
    layer.on("mouseover", function (e) { e.layer.setStyle({ weight: 2.5, color: "#222222" }); });
    layer.on("mouseout", function (e) { layer.resetStyle(e.layer); });
    MG.counts[cfg.name || cfg.data] = feats.length;
    if (cfg.legend) MG.legend(map, layer, cfg.legend);
    return layer;
  };

  /* Clustered enterprise points; cfg: data, color {key, map, other}, popup, tooltip, legend. */
  MG.firms = function (map, cfg) {
    var rows = MG.rows(cfg.data);
    var group = L.markerClusterGroup({
      chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 45,
      disableClusteringAtZoom: 18,
      iconCreateFunction: function (c) {  /* neutral colour: green/red mean grades here */
        var n = c.getChildCount(), s = n < 10 ? 24 : n < 100 ? 30 : 38;
        return L.divIcon({ html: "<div>" + n + "</div>", className: "mg-cluster", iconSize: [s, s] });
      }
    });
    var icons = {};
    function icon(col) {
      if (!icons[col]) icons[col] = L.divIcon({
        className: "mg-firm", iconSize: [12, 12],
        html: '<span style="background:' + col + '"></span>'
      });
      return icons[col];
    }
    var markers = rows.map(function (f) {
      var p = f.properties;
      var m = L.marker([p.y, p.x], { icon: icon(colourOf(p, cfg.color)), title: p.n || "" });
      m.feature = f;
      m.bindPopup(function () { return card(p, cfg.popup); }, { maxWidth: 360 });
      MG.index.push({
        text: ((p.n || "") + " " + (p.c || "")).toLowerCase(), label: p.n || p.c,
        sub: p.c || "", marker: m, group: group
      });
      return m;
    });
    group.addLayers(markers);
    MG.counts[cfg.name || cfg.data] = markers.length;
    if (cfg.legend) MG.legend(map, group, cfg.legend);
    return group;
  };

  /* Legend control shown while its layer is on the map. */
  MG.legend = function (map, layer, lg) {
    var ctl = L.control({ position: "bottomright" });
    ctl.onAdd = function () {
      var div = L.DomUtil.create("div", "mg-legend");
      var h = "<b>" + esc(lg.title) + "</b>";
      (lg.items || []).forEach(function (it) {
        h += '<div><i style="background:' + it[0] + (it[2] ? ";border:2px " + it[2] + " " + it[0] + ";background:none" : "") +
          '"></i>' + esc(it[1]) + "</div>";
      });
      if (lg.note) h += '<div class="mg-legend-note">' + esc(lg.note) + "</div>";
      div.innerHTML = h;
      L.DomEvent.disableClickPropagation(div);
      return div;
    };
    var shown = false;
    map.on("layeradd layerremove", function (e) {
      if (e.layer !== layer) return;
      var on = map.hasLayer(layer);
      if (on && !shown) ctl.addTo(map);
      if (!on && shown) ctl.remove();
      shown = on;
    });
  };

  /* Title and notes (e.g. "parcels drawn aggregated") in a box at the top of the map. */
  MG.header = function (map, title, notes) {
    var div = L.DomUtil.create("div", "mg-header", map.getContainer());
    var h = "<b>" + esc(title) + "</b>";
    (notes || []).forEach(function (n) { h += '<div class="mg-note">' + esc(n) + "</div>"; });
    div.innerHTML = h;
    L.DomEvent.disableClickPropagation(div);
    L.DomEvent.disableScrollPropagation(div);
  };

  function go(map, it) {
    if (!map.hasLayer(it.group)) map.addLayer(it.group);
    if (it.marker) {
      it.group.zoomToShowLayer(it.marker, function () { it.marker.openPopup(); });
    } else {
      map.fitBounds(it.layer.getBounds(), { maxZoom: 18 });
      it.layer.openPopup();
    }
  }

  MG.find = function (q) {
    q = String(q || "").trim().toLowerCase();
    if (!q) return [];
    return MG.index.filter(function (it) { return it.text.indexOf(q) >= 0; });
  };

  /* Search box for firm name / credit code / parcel code / holder. */
  MG.search = function (map, placeholder) {
    var ctl = L.control({ position: "topleft" });
    ctl.onAdd = function () {
      var div = L.DomUtil.create("div", "mg-search");
      div.innerHTML = '<input type="search" placeholder="' + esc(placeholder) + '"><ul></ul>';
      var input = div.querySelector("input"), list = div.querySelector("ul");
      function show() {
        var hits = MG.find(input.value).slice(0, 10);
        list.innerHTML = "";
        if (input.value.trim() && !hits.length) list.innerHTML = "<li class='mg-none'>无匹配结果</li>";
        hits.forEach(function (it) {
          var li = L.DomUtil.create("li", "", list);
          li.innerHTML = esc(it.label) + (it.sub ? "<small>" + esc(it.sub) + "</small>" : "");
          li.onclick = function () { go(map, it); };
        });
      }
      input.addEventListener("input", show);
      input.addEventListener("keydown", function (e) {
        if (e.key === "Enter") { var h = MG.find(input.value); if (h.length) go(map, h[0]); }
      });
      L.DomEvent.disableClickPropagation(div);
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    ctl.addTo(map);
  };

  /* Status for tests and diagnosis: JSON in <pre id="mg-status" hidden>. */
  function status() {
    var el = document.getElementById("mg-status");
    if (!el) {
      el = document.createElement("pre");
      el.id = "mg-status";
      el.hidden = true;
      document.body.appendChild(el);
    }
    var res = (window.performance && performance.getEntriesByType)
      ? performance.getEntriesByType("resource").map(function (r) { return r.name; }) : [];
    el.textContent = JSON.stringify({
      ready: !!MG.isReady, errors: window.MG_ERRORS || [], failed: window.MG_FAILED || [],
      resources: res, counts: MG.counts, found: MG.found || null
    });
  }
  MG.status = status;
  window.addEventListener("error", function () { setTimeout(status, 0); });

  /* Called last: marks the page ready and follows a "#q=<text>" search in the address. */
  MG.ready = function (map) {
    MG.isReady = true;
    var m = /[#&]q=([^&]*)/.exec(window.location.hash);
    if (m) {
      var hits = MG.find(decodeURIComponent(m[1]));
      MG.found = hits.length ? hits[0].label : "";
      if (hits.length) go(map, hits[0]);
    }
    status();
    setTimeout(status, 1500);
  };
})();
