// FEBLAM Hit Gateway — a desk's live board.
// Cards are built with DOM text nodes only: nothing in a hit can become markup.
"use strict";

(function () {
  const csrf = document.querySelector("meta[name=csrf-token]").content;
  const boardEl = document.getElementById("board");
  const statusEl = document.getElementById("status");
  const countsEl = document.getElementById("counts");
  const noticeEl = document.getElementById("notice");
  const cards = new Map(); // hit_id -> {hit, case}
  const OUTCOMES = [["intercepted", "Intercepted"], ["not_found", "Not found"], ["false_read", "False read"], ["other", "Other"]];
  const GROUP = { new: 0, escalated: 0, acknowledged: 1, closed: 2 };
  const MAX_CARDS = 300; // the most urgent first; a board of thousands would freeze a dispatcher's browser

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function localTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString(undefined, { hour12: false });
  }

  function notice(text) {
    noticeEl.textContent = text;
    noticeEl.hidden = !text;
    if (text) setTimeout(() => { if (noticeEl.textContent === text) noticeEl.hidden = true; }, 8000);
  }

  async function act(hitId, kind, body) {
    let resp;
    try {
      resp = await fetch("/api/hits/" + encodeURIComponent(hitId) + "/" + kind, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
      });
    } catch (e) {
      notice("The gateway did not answer; try again.");
      return;
    }
    if (resp.status === 401) { window.location = "/login"; return; }
    if (!resp.ok) {
      let msg = "HTTP " + resp.status;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      notice(msg);
      return;
    }
    const card = document.querySelector("[data-hit-id='" + CSS.escape(hitId) + "']");
    if (card) card.classList.add("pending");
  }

  function render(entry) {
    const hit = entry.hit, c = entry.case, read = hit.read || {};
    const matches = hit.matches || [];
    const covert = matches.some((m) => m.action === "observe");
    const card = el("article", "card p" + hit.priority + " " + c.state + (covert ? " covert" : ""));
    card.dataset.hitId = hit.hit_id;
    card.dataset.state = c.state;
    if (covert) card.appendChild(el("div", "covert-banner", "DO NOT INTERCEPT — observe only (covert)"));

    const head = el("div", "head");
    head.appendChild(el("span", "prio", "P" + hit.priority));
    head.appendChild(el("span", "plate", read.plate || read.plate_raw));
    head.appendChild(el("span", "country", read.country || read.country_raw || "??"));
    head.appendChild(el("span", "state state-" + c.state, c.state + (c.escalated_from ? " (from " + c.escalated_from + ")" : "")));
    if (hit.retro) head.appendChild(el("span", "retro", "retro-hit"));
    card.appendChild(head);

    const facts = el("dl", "facts");
    const fact = (k, v) => { if (v !== undefined && v !== null && v !== "") { facts.appendChild(el("dt", null, k)); facts.appendChild(el("dd", null, v)); } };
    fact("Camera", read.camera_id);
    fact("Seen", localTime(read.ts));
    fact("Position", read.lat != null && read.lon != null ? read.lat.toFixed(5) + ", " + read.lon.toFixed(5) : null);
    fact("Direction", read.direction);
    fact("Lane", read.lane);
    fact("Image", read.image_ref);
    fact("Confidence", read.confidence);
    card.appendChild(facts);

    const list = el("ul", "matches");
    for (const m of matches) {
      const li = el("li", "action-" + m.action);
      li.appendChild(el("b", null, m.list_id + " / " + m.entry_id));
      li.appendChild(el("span", "tag", m.category));
      li.appendChild(el("span", "tag kind", m.match_kind));
      li.appendChild(el("span", "tag act", m.action));
      if (m.note) li.appendChild(el("div", "note", m.note));
      list.appendChild(li);
    }
    card.appendChild(list);

    const foot = el("div", "foot");
    if (c.acknowledged_by) foot.appendChild(el("span", "who", "Acknowledged by " + c.acknowledged_by + " at " + localTime(c.acknowledged_at)));
    if (c.state === "closed") foot.appendChild(el("span", "who", "Closed by " + c.user + ": " + (c.outcome || "").replace("_", " ")));
    if (c.state === "new" || c.state === "escalated") {
      const ack = el("button", "ack", "Acknowledge");
      ack.type = "button";
      ack.addEventListener("click", () => act(hit.hit_id, "acknowledge"));
      foot.appendChild(ack);
    }
    if (c.state !== "closed") {
      const sel = el("select", "outcome");
      sel.setAttribute("aria-label", "Outcome");
      for (const [v, label] of OUTCOMES) { const o = el("option", null, label); o.value = v; sel.appendChild(o); }
      const close = el("button", "close", "Close");
      close.type = "button";
      close.addEventListener("click", () => act(hit.hit_id, "close", { outcome: sel.value }));
      foot.appendChild(sel);
      foot.appendChild(close);
    }
    foot.appendChild(el("span", "emitted", "hit " + localTime(hit.emitted_at)));
    card.appendChild(foot);
    return card;
  }

  function order(a, b) {
    const ga = GROUP[a.case.state], gb = GROUP[b.case.state];
    if (ga !== gb) return ga - gb;
    if (a.hit.priority !== b.hit.priority) return a.hit.priority - b.hit.priority;
    return a.hit.emitted_at < b.hit.emitted_at ? 1 : a.hit.emitted_at > b.hit.emitted_at ? -1 : 0;
  }

  // A sound for each urgent hit that arrives while the board is open (not for those already on it).
  const ALERT_PRIORITY = 2;
  const soundButton = document.getElementById("sound");
  let soundOn = localStorage.getItem("feblam-sound") !== "off";
  let audio = null;
  window.feblamAlerts = 0; // how many alerts this page gave (the browser test reads it)
  function showSound() { soundButton.textContent = soundOn ? "Sound on" : "Sound off"; soundButton.setAttribute("aria-pressed", String(soundOn)); }
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
  function alert(entry) {
    window.feblamAlerts += 1;
    const title = document.title;
    document.title = "NEW P" + entry.hit.priority + " HIT — " + title;
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
      const frag = document.createDocumentFragment();
      let open = 0;
      for (const entry of sorted) if (entry.case.state !== "closed") open += 1;
      for (const entry of sorted.slice(0, MAX_CARDS)) frag.appendChild(render(entry));
      if (sorted.length > MAX_CARDS) {
        frag.appendChild(el("p", "more", (sorted.length - MAX_CARDS) + " more, less urgent or closed, not shown"));
      }
      if (!sorted.length) frag.appendChild(el("p", "empty", "No hits for this desk."));
      boardEl.replaceChildren(frag);
      countsEl.textContent = open + " open";
      document.title = (open ? "(" + open + ") " : "") + document.getElementById("desk").textContent + " — FEBLAM";
    });
  }

  function connect() {
    const source = new EventSource("/api/events");
    source.addEventListener("open", () => { statusEl.textContent = "live"; statusEl.className = "status live"; });
    source.addEventListener("error", () => { statusEl.textContent = "reconnecting…"; statusEl.className = "status down"; });
    source.addEventListener("snapshot", (ev) => {
      const doc = JSON.parse(ev.data);
      cards.clear();
      for (const c of doc.cards) cards.set(c.hit_id, c);
      redraw();
    });
    source.addEventListener("card", (ev) => {
      const c = JSON.parse(ev.data);
      const known = cards.has(c.hit_id);
      if (c.case === null) cards.delete(c.hit_id); else cards.set(c.hit_id, c);
      if (!known && c.case && c.case.state === "new" && c.hit.priority <= ALERT_PRIORITY) alert(c);
      redraw();
    });
    source.addEventListener("signedout", () => { source.close(); window.location = "/login"; });
    // A stream refused with 401 (signed out) closes; EventSource does not retry it.
    setInterval(() => { if (source.readyState === EventSource.CLOSED) window.location = "/login"; }, 5000);
  }

  connect();
})();
