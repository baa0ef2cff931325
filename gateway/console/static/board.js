// FEBLAM Hit Gateway — a desk's live board: one card per vehicle case, with its trail.
// Cards are built with DOM text nodes only: nothing in a hit can become markup.
// Every word comes from the page's catalog (gateway/console/i18n.py); dates are day first, 24 h.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("console-config").textContent);
  const W = config.words;
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const boardEl = document.getElementById("board");
  const statusEl = document.getElementById("status");
  const countsEl = document.getElementById("counts");
  const noticeEl = document.getElementById("notice");
  const cards = new Map(); // case id -> {hit_id, hit, case}
  const OUTCOMES = ["intercepted", "not_found", "false_read", "other"];
  const NEEDS_REASON = new Set(["false_read", "not_found"]);
  const GROUP = { new: 0, escalated: 0, reopened: 0, acknowledged: 1, closed: 2, expired: 2 };
  const MAX_CARDS = 300; // the most urgent first; a board of thousands would freeze a dispatcher's browser
  const dateFormat = new Intl.DateTimeFormat(config.locale, {
    day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  let selected = null; // the case id the keyboard acts on

  function t(key, args) {
    let text = W[key] || key;
    for (const [k, v] of Object.entries(args || {})) text = text.split("{" + k + "}").join(String(v));
    return text;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function localTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : dateFormat.format(d);
  }

  function age(iso) {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const s = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    const h = Math.floor(m / 60);
    return h + " h " + (m % 60) + " min";
  }

  function notice(text) {
    noticeEl.textContent = text;
    noticeEl.hidden = !text;
    if (text) setTimeout(() => { if (noticeEl.textContent === text) noticeEl.hidden = true; }, 8000);
  }

  async function act(caseId, kind, body) {
    let resp;
    try {
      resp = await fetch("/api/hits/" + encodeURIComponent(caseId) + "/" + kind, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
      });
    } catch (e) {
      notice(W.no_answer);
      return;
    }
    if (resp.status === 401) { window.location = "/login"; return; }
    if (!resp.ok) {
      let msg = "HTTP " + resp.status;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      notice(msg);
      return;
    }
    const card = document.querySelector("[data-hit-id='" + CSS.escape(caseId) + "']");
    if (card) card.classList.add("pending");
  }

  function why(m, read) {
    const w = m.why;
    const box = el("div", "why");
    if (!w || !w.entry_plate) return box;
    if (w.characters) {
      const row = (label, side) => {
        const line = el("div", "why-row");
        line.appendChild(el("span", "why-label", label));
        for (const c of w.characters) {
          const ch = el("span", "ch " + c.how, c[side] || "·");
          line.appendChild(ch);
        }
        return line;
      };
      box.appendChild(row(W.why_read, "read"));
      box.appendChild(row(W.why_entry, "entry"));
      for (const c of w.substituted || []) box.appendChild(el("div", "why-ocr", t("why_ocr", c)));
    } else if (w.pattern) {
      const parts = w.pattern.map((p) => (p.pattern === "?" || p.pattern === "*") ? p.pattern + "=" + (p.read || "∅") : p.read).join(" ");
      box.appendChild(el("div", "why-pattern", t("why_pattern", { pattern: w.entry_key, parts })));
    }
    const c = w.country || {};
    box.appendChild(el("div", "why-country" + (c.agree === false ? " bad" : ""),
      t("why_country", { read: c.read || W.why_unknown, entry: c.entry || W.why_any })));
    const v = w.validity || {};
    if (v.from || v.until) {
      box.appendChild(el("div", "why-valid" + (v.inside === false ? " bad" : ""),
        t("why_valid", { from: v.from ? localTime(v.from) : W.why_open, until: v.until ? localTime(v.until) : W.why_open })));
    }
    return box;
  }

  function cloneOf(clone) {
    // a clone hit: the other place the plate was read, and why no car could have made it
    const e = clone.earlier || {};
    const box = el("section", "clone");
    box.appendChild(el("div", "clone-seen", t("clone_seen", {
      camera: e.camera_id, time: localTime(e.ts), km: clone.km, minutes: clone.minutes, kmh: clone.kmh })));
    if (e.image_ref) box.appendChild(el("div", "clone-image", W.clone_image + ": " + e.image_ref));
    return box;
  }

  function trailOf(c) {
    const box = el("section", "trail");
    const head = c.seen > 1 ? t("seen_times", { n: c.seen, minutes: Math.round(c.seen_minutes) }) : W.seen_once;
    box.appendChild(el("h3", "seen-count", head));
    if (c.seen > 1 || (c.trail || []).length > 1) {
      const list = el("ol", "sightings");
      for (const s of c.trail || []) {
        const li = el("li", "sighting");
        li.appendChild(el("span", "when", localTime(s.ts)));
        li.appendChild(el("span", "age", t("ago", { age: age(s.ts) })));
        li.appendChild(el("span", "cam", s.camera_id));
        if (s.lat != null && s.lon != null) li.appendChild(el("span", "pos", s.lat.toFixed(4) + ", " + s.lon.toFixed(4)));
        if (s.direction != null) li.appendChild(el("span", "dir", s.direction));
        list.appendChild(li);
      }
      box.appendChild(list);
    }
    return box;
  }

  const maps = new Map(); // case id -> Leaflet map, kept across redraws
  function mapOf(entry) {
    if (!config.map_tiles_url || typeof L === "undefined") return null;
    const points = (entry.case.trail || []).filter((s) => s.lat != null && s.lon != null).map((s) => [s.lat, s.lon]);
    if (!points.length) return null;
    let m = maps.get(entry.hit_id);
    if (!m) {
      const div = el("div", "map");
      div.setAttribute("aria-label", W.map);
      const map = L.map(div, { zoomControl: false, attributionControl: false });
      L.tileLayer(config.map_tiles_url, { maxZoom: 18 }).addTo(map);
      m = { div, map, layer: L.layerGroup().addTo(map) };
      maps.set(entry.hit_id, m);
    }
    m.layer.clearLayers();
    L.polyline(points, { weight: 3 }).addTo(m.layer);
    points.forEach((p, i) => L.circleMarker(p, { radius: i === 0 ? 7 : 4 }).addTo(m.layer));
    m.map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 14 });
    setTimeout(() => m.map.invalidateSize(), 0);
    return m.div;
  }

  function render(entry) {
    const hit = entry.hit, c = entry.case, read = hit.read || {};
    const matches = hit.matches || [];
    const covert = matches.some((m) => m.action === "observe");
    const card = el("article", "card p" + hit.priority + " " + c.state + (covert ? " covert" : "") + (entry.hit_id === selected ? " selected" : ""));
    card.dataset.hitId = entry.hit_id;
    card.dataset.state = c.state;
    card.tabIndex = 0;
    card.addEventListener("click", () => { selected = entry.hit_id; markSelected(); });
    if (covert) card.appendChild(el("div", "covert-banner", W.covert));

    const head = el("div", "head");
    head.appendChild(el("span", "prio", "P" + hit.priority));
    head.appendChild(el("span", "plate", read.plate || read.plate_raw));
    head.appendChild(el("span", "country", read.country || read.country_raw || "??"));
    head.appendChild(el("span", "state state-" + c.state, t("state_" + c.state) + (c.escalated_from ? " (" + t("from", { desk: c.escalated_from }) + ")" : "")));
    if (hit.retro) head.appendChild(el("span", "retro", W.retro));
    if (hit.clone) head.appendChild(el("span", "clone-tag", W.clone));
    card.appendChild(head);
    if (hit.clone) card.appendChild(cloneOf(hit.clone));

    for (const o of c.also_open || []) {
      const text = o.acknowledged_by
        ? t("also_acked", { desk: o.desk, user: o.acknowledged_by, age: age(o.acknowledged_at) })
        : t("also_open", { desk: o.desk });
      card.appendChild(el("div", "also-open", text));
    }

    const facts = el("dl", "facts");
    const fact = (k, v) => { if (v !== undefined && v !== null && v !== "") { facts.appendChild(el("dt", null, k)); facts.appendChild(el("dd", null, v)); } };
    fact(W.camera, read.camera_id);
    fact(W.seen, localTime(read.ts) + " (" + t("ago", { age: age(read.ts) }) + ")");
    fact(W.position, read.lat != null && read.lon != null ? read.lat.toFixed(5) + ", " + read.lon.toFixed(5) : null);
    fact(W.direction, read.direction);
    fact(W.lane, read.lane);
    fact(W.image, read.image_ref);
    fact(W.confidence, read.confidence);
    card.appendChild(facts);

    card.appendChild(trailOf(c));
    const map = mapOf(entry);
    if (map) card.appendChild(map);

    const list = el("ul", "matches");
    for (const m of matches) {
      const li = el("li", "action-" + m.action);
      li.appendChild(el("b", null, m.list_id + " / " + m.entry_id));
      li.appendChild(el("span", "tag", m.category));
      li.appendChild(el("span", "tag kind", m.match_kind));
      li.appendChild(el("span", "tag act", m.action));
      if (m.note) li.appendChild(el("div", "note", m.note));
      li.appendChild(why(m, read));
      list.appendChild(li);
    }
    card.appendChild(list);

    const foot = el("div", "foot");
    for (const h of c.history || []) {
      foot.appendChild(el("span", "who", t("reopened_after", { outcome: t("outcome_" + h.outcome), user: h.user })));
    }
    if (c.acknowledged_by) foot.appendChild(el("span", "who", t("acknowledged_by", { user: c.acknowledged_by, time: localTime(c.acknowledged_at) })));
    if (c.state === "closed") foot.appendChild(el("span", "who", t("closed_by", { user: c.user, outcome: t("outcome_" + c.outcome) }) + (c.reason ? " — " + c.reason : "")));
    if (c.state === "new" || c.state === "escalated" || c.state === "reopened") {
      const ack = el("button", "ack", W.acknowledge);
      ack.type = "button";
      ack.addEventListener("click", () => act(entry.hit_id, "acknowledge"));
      foot.appendChild(ack);
    }
    if (c.state !== "closed" && c.state !== "expired") {
      const sel = el("select", "outcome");
      sel.setAttribute("aria-label", W.outcome);
      for (const v of OUTCOMES) { const o = el("option", null, t("outcome_" + v)); o.value = v; sel.appendChild(o); }
      const reason = el("input", "reason");
      reason.type = "text";
      reason.maxLength = 500;
      reason.placeholder = W.reason;
      reason.setAttribute("aria-label", W.reason);
      const close = el("button", "close", W.close);
      close.type = "button";
      close.addEventListener("click", () => {
        if (NEEDS_REASON.has(sel.value) && !reason.value.trim()) { notice(W.needs_reason); reason.focus(); return; }
        act(entry.hit_id, "close", { outcome: sel.value, reason: reason.value.trim() || null });
      });
      foot.appendChild(sel);
      foot.appendChild(reason);
      foot.appendChild(close);
    }
    foot.appendChild(el("span", "emitted", t("hit_at", { time: localTime(hit.emitted_at) })));
    card.appendChild(foot);
    return card;
  }

  function order(a, b) {
    const ga = GROUP[a.case.state], gb = GROUP[b.case.state];
    if (ga !== gb) return ga - gb;
    if (a.hit.priority !== b.hit.priority) return a.hit.priority - b.hit.priority;
    return a.case.opened_at < b.case.opened_at ? 1 : a.case.opened_at > b.case.opened_at ? -1 : 0;
  }

  // ---------------------------------------------------------------- filters
  const stateFilter = document.getElementById("filter-state");
  const prioFilter = document.getElementById("filter-priority");
  document.getElementById("filter-state-label").textContent = W.filter_state;
  document.getElementById("filter-priority-label").textContent = W.filter_priority;
  for (const [v, label] of [["all", W.all], ["open", W.open_only], ["new", W.state_new], ["acknowledged", W.state_acknowledged], ["escalated", W.state_escalated], ["closed", W.state_closed]]) {
    const o = el("option", null, label); o.value = v; stateFilter.appendChild(o);
  }
  for (const v of ["5", "1", "2", "3", "4"]) {
    const o = el("option", null, v === "5" ? W.all : t("up_to", { n: v })); o.value = v; prioFilter.appendChild(o);
  }
  stateFilter.value = localStorage.getItem("feblam-filter-state") || "all";
  prioFilter.value = localStorage.getItem("feblam-filter-priority") || "5";
  for (const f of [stateFilter, prioFilter]) f.addEventListener("change", () => {
    localStorage.setItem("feblam-filter-state", stateFilter.value);
    localStorage.setItem("feblam-filter-priority", prioFilter.value);
    redraw();
  });
  function shown(entry) {
    const s = entry.case.state, want = stateFilter.value;
    if (entry.hit.priority > Number(prioFilter.value)) return false;
    if (want === "all") return true;
    if (want === "open") return GROUP[s] < 2;
    if (want === "new") return s === "new" || s === "reopened";
    return s === want;
  }

  // ---------------------------------------------------------------- alerts, only as configured
  const soundButton = document.getElementById("sound");
  let soundOn = localStorage.getItem("feblam-sound") !== "off";
  let audio = null;
  window.feblamAlerts = 0; // how many alerts this page gave (the browser test reads it)
  function showSound() { soundButton.textContent = soundOn ? W.sound_on : W.sound_off; soundButton.setAttribute("aria-pressed", String(soundOn)); }
  soundButton.addEventListener("click", () => {
    soundOn = !soundOn;
    localStorage.setItem("feblam-sound", soundOn ? "on" : "off");
    showSound();
  });
  showSound();
  function beep(at, freq) {
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.25, at);
    gain.gain.exponentialRampToValueAtTime(0.001, at + 0.25);
    osc.connect(gain).connect(audio.destination);
    osc.start(at);
    osc.stop(at + 0.25);
  }
  const flashing = new Set();
  function alert(entry) {
    window.feblamAlerts += 1;
    flashing.add(entry.hit_id);
    setTimeout(() => { flashing.delete(entry.hit_id); redraw(); }, 3000);
    const title = document.title;
    document.title = t("new_alert", { p: entry.hit.priority }) + " — " + title;
    setTimeout(() => { document.title = title; }, 3000);
    if (!soundOn) return;
    try {
      audio = audio || new AudioContext();
      beep(audio.currentTime, 880);
      beep(audio.currentTime + 0.3, entry.hit.priority === 1 ? 1175 : 880);
    } catch (e) { /* no audio device: the title and the card still show it */ }
  }

  let scheduled = false;
  function redraw() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      const sorted = [...cards.values()].sort(order);
      const visible = sorted.filter(shown);
      const frag = document.createDocumentFragment();
      let open = 0;
      for (const entry of sorted) if (GROUP[entry.case.state] < 2) open += 1;
      for (const entry of visible.slice(0, MAX_CARDS)) {
        const card = render(entry);
        if (flashing.has(entry.hit_id)) card.classList.add("flash");
        frag.appendChild(card);
      }
      if (visible.length > MAX_CARDS) frag.appendChild(el("p", "more", t("more", { n: visible.length - MAX_CARDS })));
      if (!visible.length) frag.appendChild(el("p", "empty", W.empty));
      boardEl.replaceChildren(frag);
      for (const id of [...maps.keys()]) if (!cards.has(id)) { maps.get(id).map.remove(); maps.delete(id); }
      countsEl.textContent = t("open", { n: open });
      document.title = (open ? "(" + open + ") " : "") + document.getElementById("desk").textContent + " — FEBLAM";
    });
  }
  setInterval(redraw, 30000); // the ages ("3 min") move on

  // ---------------------------------------------------------------- keyboard
  function ids() { return [...boardEl.querySelectorAll("article.card")].map((c) => c.dataset.hitId); }
  function markSelected() {
    for (const c of boardEl.querySelectorAll("article.card")) c.classList.toggle("selected", c.dataset.hitId === selected);
    const card = selected && boardEl.querySelector("[data-hit-id='" + CSS.escape(selected) + "']");
    if (card) card.scrollIntoView({ block: "nearest" });
  }
  function move(step) {
    const list = ids();
    if (!list.length) return;
    const i = list.indexOf(selected);
    selected = list[i < 0 ? 0 : Math.min(list.length - 1, Math.max(0, i + step))];
    markSelected();
  }
  document.addEventListener("keydown", (ev) => {
    const tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const entry = selected && cards.get(selected);
    if (ev.key === "j" || ev.key === "ArrowDown") { move(1); ev.preventDefault(); }
    else if (ev.key === "k" || ev.key === "ArrowUp") { move(-1); ev.preventDefault(); }
    else if (ev.key === "n") {
      const next = ids().find((id) => GROUP[cards.get(id).case.state] === 0);
      if (next) { selected = next; markSelected(); }
    } else if (ev.key === "a" && entry && GROUP[entry.case.state] === 0) act(entry.hit_id, "acknowledge");
    else if (ev.key === "c" && entry) {
      const card = boardEl.querySelector("[data-hit-id='" + CSS.escape(selected) + "']");
      const sel = card && card.querySelector("select.outcome");
      if (sel) { sel.focus(); ev.preventDefault(); }
    }
  });

  // ---------------------------------------------------------------- the stream
  function connect() {
    const source = new EventSource("/api/events");
    source.addEventListener("open", () => { statusEl.textContent = W.live; statusEl.className = "status live"; });
    source.addEventListener("error", () => { statusEl.textContent = W.reconnecting; statusEl.className = "status down"; });
    source.addEventListener("snapshot", (ev) => {
      const doc = JSON.parse(ev.data);
      cards.clear();
      for (const c of doc.cards) cards.set(c.hit_id, c);
      redraw();
    });
    source.addEventListener("card", (ev) => {
      const c = JSON.parse(ev.data);
      if (c.case === null) cards.delete(c.hit_id); else cards.set(c.hit_id, c);
      if (c.case && c.alert && c.hit.priority <= config.alert_max_priority) alert(c);
      redraw();
    });
    source.addEventListener("signedout", () => { source.close(); window.location = "/login"; });
    // A stream refused with 401 (signed out) closes; EventSource does not retry it.
    setInterval(() => { if (source.readyState === EventSource.CLOSED) window.location = "/login"; }, 5000);
  }

  connect();
})();
