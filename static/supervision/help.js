// Help requests on the dashboard (helprequests.live on the server): a trainee's "I need help" and
// Cancel on his own card while he is in a call; for his curator (or the admins, when the curator has
// no dashboard open) a banner at the top naming the trainee with one-press Listen / Whisper / Barge,
// the trainee's card marked, an optional beep, and the count in the totals strip.
//
// It plugs into dashboard.js through document events only: "dashboard:message" (every message from
// the server), "dashboard:render" (the board as just drawn: {state, cards, serverNow}), and it asks
// dashboard.js to send ("dashboard:send") or to press a card's mode button ("dashboard:press"), so a
// banner's Listen is exactly the card's Listen (the same spy command, switch included).
(function () {
  "use strict";

  const L = JSON.parse(document.getElementById("dashboard-labels").textContent);
  const MODES = ["listen", "whisper", "barge"];
  const SOUND_KEY = "dashboard.helpSound";
  const $ = (id) => document.getElementById(id);
  const fmt = (text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => (values[key] ?? ""));

  const requests = new Map(); // request id -> the latest open `help` message
  const alerted = new Set(); // request ids this page has announced (a reconnect does not again)
  let board = null; // {state, cards, serverNow} of the last render
  let audio = null;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function send(message) {
    document.dispatchEvent(new CustomEvent("dashboard:send", { detail: message }));
  }

  function now() {
    return board ? board.serverNow() : Date.now() / 1000;
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const m = Math.floor(seconds / 60);
    return m + ":" + String(seconds % 60).padStart(2, "0");
  }

  function myId() {
    return board && board.state ? board.state.me.id : null;
  }

  function isTrainee() {
    return Boolean(board && board.state && board.state.me.role === "trainee");
  }

  // --- messages ----------------------------------------------------------------------------------
  document.addEventListener("dashboard:message", (event) => {
    const message = event.detail;
    if (message.type === "snapshot") {
      // The bridge follows every snapshot with the open requests this page should show.
      requests.clear();
      draw();
      return;
    }
    if (message.type !== "help") return;
    if (message.state === "denied") {
      mine(message.text, false);
      return;
    }
    if (message.state === "open") {
      const fresh = !alerted.has(message.request);
      requests.set(message.request, message);
      if (fresh) {
        alerted.add(message.request);
        if (message.trainee !== myId()) {
          $("help-alert").textContent = fmt(L.help_alert, { name: message.trainee_name });
          beep();
        }
      }
    } else {
      requests.delete(message.request);
      ended(message);
    }
    draw();
  });

  document.addEventListener("dashboard:render", (event) => {
    board = event.detail;
    draw();
  });

  // How a request ended, in words, for whoever was shown it.
  function ended(message) {
    const as = L["help_as_" + message.mode] || message.mode || "";
    const time = duration(message.response_seconds || 0);
    if (message.trainee === myId()) {
      if (message.state === "joined") mine(fmt(L.help_joined_me, { name: message.responder_name, mode: as, time }), false);
      else if (message.state === "cancelled") mine(L.help_cancelled_me, false);
      else if (message.state === "call_ended") mine(L.help_call_ended_me, false);
      else mine(L.help_interrupted, false);
      return;
    }
    let text;
    if (message.state === "joined") text = fmt(L.help_joined, { responder: message.responder_name, name: message.trainee_name, mode: as, time });
    else if (message.state === "cancelled") text = fmt(L.help_cancelled, { name: message.trainee_name });
    else if (message.state === "call_ended") text = fmt(L.help_call_ended, { name: message.trainee_name });
    else text = fmt(L.help_interrupted_for, { name: message.trainee_name });
    $("help-alert").textContent = text;
  }

  // --- the trainee's own page ----------------------------------------------------------------------
  function mine(text, keep) {
    const node = $("help-mine");
    if (!node) return;
    node.textContent = text || "";
    node.hidden = !text;
    node.dataset.keep = keep ? "1" : "";
  }

  function myRequest() {
    for (const request of requests.values()) if (request.trainee === myId()) return request;
    return null;
  }

  function drawOwn() {
    if (!isTrainee()) return;
    const card = board.cards.get("me");
    if (!card) return;
    const actions = card.root.querySelector(".actions");
    // The card is built again on every snapshot: the buttons are put back when missing.
    let raise = actions.querySelector("button.help-raise");
    let cancel = actions.querySelector("button.help-cancel");
    if (!raise) {
      raise = el("button", { type: "button", class: "help-raise" }, L.help_raise);
      raise.addEventListener("click", () => send({ type: "help.raise" }));
      cancel = el("button", { type: "button", class: "help-cancel secondary" }, L.help_cancel);
      cancel.addEventListener("click", () => {
        const request = myRequest();
        if (request) send({ type: "help.cancel", request: request.request });
      });
      actions.prepend(raise, cancel);
    }
    const request = myRequest();
    const inCall = card.state === "in_call";
    raise.hidden = Boolean(request) || !inCall;
    cancel.hidden = !request;
    card.root.dataset.help = request ? "open" : "";
    if (request) {
      const words = { curator: L.help_told_curator, admins: L.help_told_admins, nobody: L.help_told_nobody };
      mine(fmt(words[request.notified] || L.help_told_curator, { name: request.curator_name }), true);
    } else if ($("help-mine") && $("help-mine").dataset.keep === "1") {
      mine("", false);
    }
  }

  // --- a curator's or an admin's page ----------------------------------------------------------
  function cardOf(request) {
    return board ? board.cards.get(request.trainee) : null;
  }

  function drawBanner() {
    const banner = $("help-banner");
    const list = $("help-list");
    if (!banner || !list) return;
    const shown = [...requests.values()].filter((request) => request.trainee !== myId());
    const ids = new Set(shown.map((request) => String(request.request)));
    for (const item of [...list.children]) if (!ids.has(item.dataset.request)) item.remove();
    for (const request of shown.sort((a, b) => a.raised_at - b.raised_at)) {
      let item = list.querySelector(`li[data-request="${request.request}"]`);
      if (!item) item = newItem(request, list);
      updateItem(item, request);
    }
    banner.hidden = shown.length === 0;
    const total = document.querySelector('#totals [data-total="help"] .value');
    if (total) total.textContent = String(shown.length);
    // The trainees' cards: marked while their request is open (cards are rebuilt on each snapshot).
    if (board) {
      for (const [key, card] of board.cards) {
        if (key === "me") continue;
        const request = shown.find((r) => r.trainee === key);
        let mark = card.root.querySelector(".help-mark");
        if (request && !mark) {
          mark = el("p", { class: "help-mark" });
          card.root.querySelector("header").after(mark);
        }
        if (mark) {
          mark.hidden = !request;
          if (request) mark.textContent = fmt(L.help_card, { time: duration(now() - request.raised_at) });
        }
        if (request) card.root.dataset.help = "open";
        else delete card.root.dataset.help;
      }
    }
  }

  function newItem(request, list) {
    const item = el("li", { class: "help-item", "data-request": String(request.request), "data-trainee": String(request.trainee) });
    const words = el("p", { class: "help-words" });
    words.append(el("strong", { class: "help-who" }, fmt(L.help_asks, { name: request.trainee_name })), " ", el("span", { class: "help-since" }));
    if (request.notified !== "curator" && request.curator_name) {
      words.append(" ", el("span", { class: "help-note" }, fmt(L.help_curator_away, { name: request.curator_name })));
    }
    item.append(words);
    const group = el("div", { class: "actions", role: "group", "aria-label": fmt(L.help_join, { name: request.trainee_name }) });
    for (const mode of MODES) {
      const button = el("button", { type: "button", class: "mode", "data-mode": mode }, L[mode]);
      button.addEventListener("click", () => {
        document.dispatchEvent(new CustomEvent("dashboard:press", { detail: { person: request.trainee, mode } }));
      });
      group.append(button);
    }
    item.append(group);
    list.append(item);
    return item;
  }

  function updateItem(item, request) {
    item.querySelector(".help-since").textContent = fmt(L.help_waiting, { time: duration(now() - request.raised_at) });
    const card = cardOf(request);
    const extension = card && card.live ? card.live.extension : null;
    const inCall = Boolean(card && card.state === "in_call");
    for (const button of item.querySelectorAll("button[data-mode]")) {
      const mode = button.dataset.mode;
      const allowed = Boolean(extension && extension.modes.includes(mode));
      button.hidden = !(card && card.person.extensions.some((e) => e.modes.includes(mode)));
      button.disabled = !(allowed && inCall) || (document.querySelector("main.stale") !== null);
      const active = Boolean(card && card.session && card.session.mode === mode);
      button.setAttribute("aria-pressed", active ? "true" : "false");
    }
  }

  function draw() {
    if (!board) return;
    drawOwn();
    drawBanner();
  }

  setInterval(() => { if (requests.size) draw(); }, 1000);

  // --- the optional beep (off unless the user turned it on; remembered in this browser) -------------
  const toggle = $("help-sound");
  function soundOn() {
    try { return localStorage.getItem(SOUND_KEY) === "1"; } catch (e) { return false; }
  }
  if (toggle) {
    toggle.checked = soundOn();
    toggle.addEventListener("change", () => {
      try { localStorage.setItem(SOUND_KEY, toggle.checked ? "1" : "0"); } catch (e) { /* not kept */ }
      if (toggle.checked) { context(); beep(); } // the click lets the browser start the sound
    });
  }

  function context() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume();
    return audio;
  }

  // A page reloaded with the sound on may start it only after the user touched the page.
  document.addEventListener("click", () => { if (audio && audio.state === "suspended") audio.resume(); });

  function beep() {
    if (!toggle || !toggle.checked) return;
    const ctx = context();
    if (!ctx) return;
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.0001, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.2, ctx.currentTime + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + 0.35);
    tone.connect(gain).connect(ctx.destination);
    tone.start();
    tone.stop(ctx.currentTime + 0.4);
  }
})();
