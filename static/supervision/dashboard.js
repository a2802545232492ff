// The live dashboard: a snapshot from the server, then diffs applied to it (no build step).
// The server filters what this user may see and re-checks every button press.
(function () {
  "use strict";

  const L = JSON.parse(document.getElementById("dashboard-labels").textContent);
  const MODES = ["listen", "whisper", "barge"];
  const LIVE_SESSION = new Set(["queued", "answered", "spying", "listening", "stopping"]);
  const HEARTBEAT_MS = 20000;
  const SILENCE_MS = 45000; // the server sends a heartbeat every 15 s; silence this long = dead link
  // Acknowledge what was applied, so the server can bound what it sends ahead of this page: after
  // this many frames, or this long after the first unacknowledged one (cheap either way).
  const ACK_EVERY_FRAMES = 50;
  const ACK_AFTER_MS = 500;
  const STALE_CLOSE_CODE = 4408; // the server closed a page that fell behind and stayed silent
  const SESSION_ENDED_CLOSE_CODE = 4401; // logged out (here or elsewhere): the server shows the login page

  const $ = (id) => document.getElementById(id);
  const fmt = (text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => (values[key] ?? ""));

  let socket = null;
  let retry = 0;
  let lastHeard = 0;
  let unacked = 0; // frames applied since the last ack
  let ackTimer = null;
  let state = null; // {me, people, channels: Map, link, seq, skew}
  let cards = new Map(); // person id -> card elements
  const sessions = new Map(); // extension id -> latest spy.status

  // --- the board, mirrored from supervision.board.apply_diffs ---------------------------------
  function applyDiffs(channels, diffs) {
    for (const diff of diffs) {
      if (diff.op === "upsert") channels.set(diff.channel.name, diff.channel);
      else if (diff.op === "remove") channels.delete(diff.name);
    }
  }

  // --- socket ------------------------------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/dashboard/");
    setSocketState("connecting", L.socket_connecting);
    socket.onopen = () => {
      retry = 0;
      lastHeard = Date.now();
      unacked = 0;
      send({ type: "hello", acks: true });
    };
    socket.onmessage = (event) => {
      lastHeard = Date.now();
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      handle(message);
    };
    socket.onclose = (event) => {
      socket = null;
      if (event.code === SESSION_ENDED_CLOSE_CODE) { location.reload(); return; }
      if (event.code === STALE_CLOSE_CODE) retry = 0; // fell behind: come back at once
      const delay = Math.min(30, 2 ** retry) * (0.5 + Math.random() / 2);
      retry += 1;
      setSocketState("reconnecting", fmt(L.socket_reconnecting, { seconds: Math.ceil(delay) }));
      setTimeout(connect, delay * 1000);
    };
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function applied() {
    unacked += 1;
    if (unacked >= ACK_EVERY_FRAMES) sendAck();
    else if (ackTimer === null) ackTimer = setTimeout(sendAck, ACK_AFTER_MS);
  }

  function sendAck() {
    if (ackTimer !== null) { clearTimeout(ackTimer); ackTimer = null; }
    unacked = 0;
    if (state) send({ type: "ack", seq: state.seq });
  }

  setInterval(() => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    if (Date.now() - lastHeard > SILENCE_MS) { socket.close(); return; }
    send({ type: "ping" });
  }, HEARTBEAT_MS);

  function handle(message) {
    switch (message.type) {
      case "snapshot":
        state = {
          me: message.me, people: message.people, link: message.link, seq: message.seq,
          channels: new Map(message.channels.map((c) => [c.name, c])),
          skew: message.now ? message.now - Date.now() / 1000 : 0,
        };
        setSocketState("live", L.socket_live);
        // The bridge follows every snapshot with this user's sessions in flight (spy.status):
        // what this page knew may have ended meanwhile.
        sessions.clear();
        buildCards();
        showLink(message.link);
        render();
        applied();
        break;
      case "diff":
        if (!state) return;
        applyDiffs(state.channels, message.diffs);
        state.seq = message.seq;
        render();
        applied();
        break;
      case "link":
        showLink(message.link);
        break;
      case "spy.status":
        sessions.set(message.target, message);
        if (state) render();
        announce(message.text, message.target);
        break;
      case "monitored":
        showMonitored(message);
        break;
      case "call.status":
        // Pickup results go on the ringing card; click-to-call (and playback) results by the dial box.
        if (message.kind === "pickup") announce(message.text, message.target);
        else if ($("dial-status")) $("dial-status").textContent = message.text;
        else announce(message.text);
        break;
      case "error":
        announce((L.error + ": ") + (message.message || message.code), message.target);
        break;
      default:
        if (message.text) announce(message.text, message.target);
    }
  }

  // --- status bar ----------------------------------------------------------------------------
  function setSocketState(name, text) {
    const el = $("socket-state");
    el.dataset.state = name;
    el.textContent = text;
  }

  function showLink(link) {
    const el = $("link-state");
    if (!link) return;
    el.dataset.state = link.state;
    let text;
    if (link.state === "up") text = L.link_up;
    else if (link.state === "connecting") text = L.link_connecting;
    else if (link.state === "login_refused") text = fmt(L.link_login_refused, { detail: link.detail });
    else if (link.state === "no_bridge") text = L.link_no_bridge;
    else text = fmt(L.link_down, { time: link.since ? new Date(link.since * 1000).toLocaleTimeString() : "?" });
    if (link.state === "down" && link.detail) text += " (" + link.detail + ")";
    if (link.resync === "not_permitted") text += " · " + L.resync_not_permitted;
    el.textContent = text;
    el.title = link.detail || "";
  }

  function showMonitored(message) {
    const el = $("monitored");
    if (message.active === false) { el.hidden = true; return; }
    // The mode matters to the person on the call: a whisper is heard by him only, a barge by his caller too.
    const label = L["monitored_" + message.mode] || L.monitored;
    el.textContent = message.text || fmt(label, { name: message.by || L.unknown });
    el.hidden = false;
  }

  function announce(text, target) {
    if (!text) return;
    const card = target !== undefined ? cardOfExtension(target) : null;
    if (card) card.status.textContent = text;
    else $("announcer").textContent = text;
  }

  // --- cards ---------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function buildCard(person, own) {
    const root = el("article", { class: "card" + (own ? " own" : ""), "data-person": person.id, "aria-labelledby": "p" + person.id });
    const head = el("header");
    head.append(el("h3", { id: "p" + person.id }, person.name));
    const devices = el("span", { class: "devices" }, person.extensions.map((e) => e.device).join(", ") || L.no_phone);
    head.append(devices);
    const badge = el("span", { class: "badge", "data-state": "idle" }, L.idle);
    head.append(badge);
    root.append(head);
    const facts = el("dl", { class: "facts" });
    const caller = addFact(facts, L.caller);
    const duration = addFact(facts, L.duration);
    const listeners = addFact(facts, L.listened_by);
    root.append(facts);
    const actions = el("div", { class: "actions", role: "group", "aria-label": person.name });
    const buttons = {};
    if (!own) {
      for (const mode of MODES) {
        buttons[mode] = el("button", { type: "button", "data-mode": mode }, L[mode]);
        buttons[mode].addEventListener("click", () => press(card, mode));
        actions.append(buttons[mode]);
      }
    }
    // "Answer here" (PickupChan to my own phone): on my own ringing call too, as in the article.
    buttons.pickup = el("button", { type: "button", class: "secondary", "data-action": "pickup", hidden: "" }, L.pickup);
    buttons.pickup.addEventListener("click", () => card.live && send({ type: "pickup", target: card.live.extension.id }));
    actions.append(buttons.pickup);
    const stop = el("button", { type: "button", class: "stop", hidden: "" }, L.stop);
    stop.addEventListener("click", () => card.session && send({ type: "spy.stop", session: card.session.session }));
    actions.append(stop);
    root.append(actions);
    const status = el("p", { class: "status", "aria-live": "polite" });
    root.append(status);
    const card = { person, own, root, badge, caller, duration, listeners, buttons, stop, status, live: null, session: null };
    return card;
  }

  function addFact(list, label) {
    const row = el("div", { hidden: "" });
    row.append(el("dt", {}, label));
    const value = el("dd");
    row.append(value);
    list.append(row);
    return value;
  }

  function buildCards() {
    cards = new Map();
    const me = buildCard(state.me, true);
    cards.set("me", me);
    $("me").replaceChildren(me.root);
    const grid = $("people");
    grid.replaceChildren();
    for (const person of state.people) {
      const card = buildCard(person, false);
      cards.set(person.id, card);
      grid.append(card.root);
    }
    if (!state.people.length) grid.append(el("p", { class: "empty" }, L.nobody));
  }

  function cardOfExtension(extensionId) {
    for (const card of cards.values()) {
      if (card.person.extensions.some((e) => e.id === extensionId)) return card;
    }
    return null;
  }

  // A leg of a ChanSpy, PickupChan or Playback (the board's `leg`, on the phone's own leg too on the
  // PJSIP route) is not a call: the card says what the phone is doing and offers no button on it.
  function isConversation(channel) {
    return !channel.leg && !channel.spying_on;
  }

  // The call shown on a card: a conversation before a leg, an answered one before a ringing one.
  function liveCall(person, byDevice) {
    let best = null;
    let bestRank = -1;
    for (const extension of person.extensions) {
      for (const channel of byDevice.get(extension.device) || []) {
        const rank = (isConversation(channel) ? 4 : 0) + (channel.state === "up" ? 2 : channel.state === "ringing" ? 1 : 0);
        if (rank > bestRank) { best = { channel, extension }; bestRank = rank; }
      }
    }
    return best;
  }

  function nameOfDevice(device) {
    for (const card of cards.values()) {
      if (card.person.extensions.some((e) => e.device === device)) return card.person.name;
    }
    return L.someone;
  }

  function nameOfChannel(channelName) {
    return nameOfDevice(channelName.slice(0, channelName.lastIndexOf("-")));
  }

  // What a phone whose channel is a leg is doing, in words: "Whispering to Anna", "Answering a call".
  function doing(channel) {
    const leg = channel.leg || { role: "spy", target: channel.spying_on, mode: channel.spy_mode };
    if (leg.role === "pickup") return L.leg_pickup;
    if (leg.role === "playback") return L.leg_playback;
    if (!leg.target) return L.leg_joining;
    return fmt(L["doing_" + (leg.mode || "listen")], { name: nameOfChannel(leg.target) });
  }

  function press(card, mode) {
    if (!card.live) return;
    if (card.session && LIVE_SESSION.has(card.session.state)) {
      send({ type: "spy.switch", session: card.session.session, mode });
    } else {
      send({ type: "spy", target: card.live.extension.id, mode });
    }
  }

  function show(valueEl, text) {
    valueEl.textContent = text || "";
    valueEl.parentElement.hidden = !text;
  }

  function renderCard(card, byDevice) {
    const live = liveCall(card.person, byDevice);
    card.live = live;
    const channel = live && live.channel;
    let badgeState = "idle";
    let badgeText = L.idle;
    if (channel && !isConversation(channel)) { badgeState = "spying"; badgeText = doing(channel); }
    else if (channel && channel.state === "up") { badgeState = "in_call"; badgeText = L.in_call; }
    else if (channel && channel.state === "ringing") { badgeState = "ringing"; badgeText = L.ringing; }
    else if (channel) { badgeState = "dialling"; badgeText = L.dialling; }
    if (card.badge.dataset.state !== badgeState || card.badge.textContent !== badgeText) {
      card.badge.dataset.state = badgeState;
      card.badge.textContent = badgeText;
    }
    card.root.dataset.state = badgeState;
    const caller = channel && isConversation(channel)
      ? [channel.connected_name, channel.connected_num].filter((v) => v && v !== "<unknown>").join(" ")
      : "";
    show(card.caller, caller);
    // Who is on this call, as people and modes (the board names the spying phone, not its Local leg).
    const watchers = channel && channel.watchers ? channel.watchers : [];
    show(card.listeners, watchers.map((w) => fmt(L["watcher_" + (w.mode || "listen")], { name: nameOfDevice(w.device) })).join(", "));
    tickCard(card);

    const session = live ? sessions.get(live.extension.id) : null;
    card.session = session && LIVE_SESSION.has(session.state) ? session : null;
    const inCall = channel && channel.state === "up" && isConversation(channel);
    for (const mode of MODES) {
      const button = card.buttons[mode];
      if (!button) continue;
      const allowed = live ? live.extension.modes.includes(mode) : card.person.extensions.some((e) => e.modes.includes(mode));
      button.hidden = !card.person.extensions.some((e) => e.modes.includes(mode));
      button.disabled = !(allowed && inCall) || (card.session && card.session.mode === mode);
      button.textContent = card.session ? L.switch_to + " " + L[mode].toLowerCase() : L[mode];
      if (card.session && card.session.mode === mode) button.textContent = L[mode];
      button.setAttribute("aria-pressed", card.session && card.session.mode === mode ? "true" : "false");
    }
    if (card.buttons.pickup) {
      card.buttons.pickup.hidden = !(channel && channel.state === "ringing" && live.extension.pickup);
    }
    card.stop.hidden = !card.session;
  }

  function tickCard(card) {
    const channel = card.live && card.live.channel;
    const start = channel && (channel.answered_at || channel.created_at);
    if (!start) { show(card.duration, ""); return; }
    const seconds = Math.max(0, Math.floor(Date.now() / 1000 + state.skew - start));
    const text = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
    show(card.duration, text);
  }

  // Every card is rendered after each frame: the channels are grouped by phone once, not walked
  // again for every extension of every card.
  function render() {
    const byDevice = new Map();
    for (const channel of state.channels.values()) {
      const list = byDevice.get(channel.device);
      if (list) list.push(channel);
      else byDevice.set(channel.device, [channel]);
    }
    for (const card of cards.values()) renderCard(card, byDevice);
  }

  setInterval(() => { if (state) for (const card of cards.values()) tickCard(card); }, 1000);

  // Click-to-call: the server validates the number again and answers with call.status.
  const dialForm = $("dial-form");
  if (dialForm) {
    dialForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const number = $("dial-number").value.trim();
      if (!number) return;
      $("dial-status").textContent = "";
      send({ type: "dial", number });
    });
  }
  connect();
})();
