// The live dashboard: a snapshot from the server, then diffs applied to it (no build step).
// The server filters what this user may see and re-checks every button press.
(function () {
  "use strict";

  const L = JSON.parse(document.getElementById("dashboard-labels").textContent);
  const CONFIG = JSON.parse(document.getElementById("dashboard-config").textContent);
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
  // A status line (a press's outcome) says when it was written and goes after this long
  // (settings.STATUS_LINE_SECONDS), unless it is about a session still in flight.
  const STATUS_EXPIRES_MS = CONFIG.status_line_seconds * 1000;
  const STATE_ORDER = { in_call: 0, ringing: 1, dialling: 2, spying: 3, idle: 4, offline: 5 };
  const VIEW_KEY = "dashboard.view";

  const $ = (id) => document.getElementById(id);
  const fmt = (text, values) => text.replace(/%\((\w+)\)s/g, (_, key) => (values[key] ?? ""));

  let socket = null;
  let socketLive = false;
  let retry = 0;
  let lastHeard = 0;
  let unacked = 0; // frames applied since the last ack
  let ackTimer = null;
  let state = null; // {me, people, channels: Map, phones: Map, link, seq, skew}
  let frozenAt = null; // epoch s: the board is not live (PBX link or socket down): clocks stop here
  let cards = new Map(); // person id -> card elements
  const sessions = new Map(); // extension id -> latest spy.status
  const view = loadView();

  // --- the board, mirrored from supervision.board.apply_diffs ---------------------------------
  function applyDiffs(channels, phones, diffs) {
    for (const diff of diffs) {
      if (diff.op === "upsert") channels.set(diff.channel.name, diff.channel);
      else if (diff.op === "remove") channels.delete(diff.name);
      else if (diff.op === "phone") phones.set(diff.device, diff.phone);
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
      socketLive = false;
      setSocketState("reconnecting", fmt(L.socket_reconnecting, { seconds: Math.ceil(delay) }));
      updateStale();
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
          phones: new Map((message.phones || []).map((p) => [p.device, p])),
          skew: message.now ? message.now - Date.now() / 1000 : 0,
        };
        socketLive = true;
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
        applyDiffs(state.channels, state.phones, message.diffs);
        state.seq = message.seq;
        render();
        applied();
        break;
      case "link":
        showLink(message.link);
        if (state) render();
        break;
      case "spy.status":
        sessions.set(message.target, message);
        if (state) render();
        announce(message.text, message.target, LIVE_SESSION.has(message.state));
        break;
      case "monitored":
        showMonitored(message);
        break;
      case "call.status":
        // Pickup results go on the ringing card; click-to-call (and playback) results by the dial box.
        if (message.kind === "pickup") announce(message.text, message.target);
        else if ($("dial-status")) stamp($("dial-status"), message.text);
        else announce(message.text);
        break;
      case "error":
        announce((L.error + ": ") + (message.message || message.code), message.target);
        break;
      case "help":
        break; // help.js shows help requests
      default:
        if (message.text) announce(message.text, message.target);
    }
    // For the page's other scripts (help.js): every message, after the board took it.
    document.dispatchEvent(new CustomEvent("dashboard:message", { detail: message }));
  }

  // The page's other scripts send on this socket, and press a card's mode button (a banner's
  // Listen is the card's Listen: spy, or a switch while a session is live).
  document.addEventListener("dashboard:send", (event) => send(event.detail));
  document.addEventListener("dashboard:press", (event) => {
    const card = cards.get(event.detail.person);
    if (card) press(card, event.detail.mode);
  });

  // --- now, and the board going stale ----------------------------------------------------------
  function serverNow() {
    return Date.now() / 1000 + (state ? state.skew : 0);
  }

  function now() {
    return frozenAt !== null ? frozenAt : serverNow();
  }

  // Why the board cannot be trusted right now (null while it is live).
  function staleReason() {
    if (!socketLive) return L.stale_socket;
    if (!state || !state.link) return L.stale_link;
    if (state.link.state === "up") return null;
    if (state.link.state === "no_bridge") return L.stale_no_bridge;
    return L.stale_link;
  }

  function updateStale() {
    const reason = staleReason();
    const main = document.querySelector("main") || document.body;
    const dial = document.querySelector("#dial-form button[type=submit]");
    if (dial) {
      dial.disabled = reason !== null;
      dial.title = reason || "";
    }
    if (reason === null) {
      frozenAt = null;
      main.classList.remove("stale");
      $("stale-banner").hidden = true;
      return;
    }
    if (frozenAt === null) {
      // The last moment the board is known to be right: the PBX link's own "down since", else now.
      const since = state && state.link && state.link.state === "down" && state.link.since;
      frozenAt = since && since < serverNow() ? since : serverNow();
    }
    main.classList.add("stale");
    const banner = $("stale-banner");
    banner.textContent = fmt(L.stale_banner, { time: clock(frozenAt), reason });
    banner.hidden = false;
  }

  // Times in the page's language (not the browser's: a Russian page shows 24-hour times).
  const PAGE_LOCALE = document.documentElement.lang || undefined;

  function clock(epoch) {
    return new Date((epoch - (state ? state.skew : 0)) * 1000).toLocaleTimeString(PAGE_LOCALE, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function shortClock(epoch) {
    return new Date(epoch * 1000).toLocaleTimeString(PAGE_LOCALE, { hour: "2-digit", minute: "2-digit" });
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
    if (state) state.link = link;
    el.dataset.state = link.state;
    let text;
    if (link.state === "up") text = L.link_up;
    else if (link.state === "connecting") text = L.link_connecting;
    else if (link.state === "login_refused") text = fmt(L.link_login_refused, { detail: link.detail });
    else if (link.state === "no_bridge") text = L.link_no_bridge;
    else {
      text = fmt(L.link_down, { time: link.since ? clock(link.since) : "?" });
      if (link.retry_in) text += " · " + fmt(L.link_retry, { seconds: Math.ceil(link.retry_in) });
    }
    if (link.resync === "not_permitted") text += " · " + L.resync_not_permitted;
    el.textContent = text;
    el.title = link.detail || "";
    updateStale();
  }

  function showMonitored(message) {
    const el = $("monitored");
    if (message.active === false) { el.hidden = true; return; }
    // The mode matters to the person on the call: a whisper is heard by him only, a barge by his caller too.
    const label = L["monitored_" + message.mode] || L.monitored;
    el.textContent = message.text || fmt(label, { name: message.by || L.unknown });
    el.hidden = false;
  }

  // A status line says when it was written; it goes after a while unless `keep` (a live session).
  function stamp(node, text, keep) {
    const line = node.closest(".status-line");
    node.textContent = text;
    const time = line ? line.querySelector("time") : null;
    if (time) {
      time.textContent = shortClock(Date.now() / 1000); // the reader's own clock, like the rest of the page
      time.dateTime = new Date().toISOString();
      time.hidden = !text;
    }
    if (node._expiry) clearTimeout(node._expiry);
    node._expiry = keep || !text ? null : setTimeout(() => {
      node.textContent = "";
      if (time) time.hidden = true;
    }, STATUS_EXPIRES_MS);
  }

  function announce(text, target, keep) {
    if (!text) return;
    const card = target !== undefined ? cardOfExtension(target) : null;
    if (card) stamp(card.status, text, keep);
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
    const presence = el("p", { class: "presence", "data-presence": "unknown" });
    root.append(presence);
    const calls = el("ul", { class: "calls", "aria-label": L.calls });
    root.append(calls);
    const idle = el("p", { class: "idle-time", hidden: "" });
    root.append(idle);
    const facts = el("dl", { class: "facts" });
    const listeners = addFact(facts, L.listened_by);
    root.append(facts);
    const actions = el("div", { class: "actions", role: "group", "aria-label": person.name });
    const buttons = {};
    if (!own) {
      for (const mode of MODES) {
        buttons[mode] = el("button", { type: "button", class: "mode", "data-mode": mode }, L[mode]);
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
    const line = el("div", { class: "status-line" });
    const time = el("time", { class: "status-time", hidden: "" });
    const status = el("p", { class: "status", "aria-live": "polite" });
    line.append(time, status);
    root.append(line);
    const card = { person, own, root, badge, presence, calls, idle, listeners, buttons, stop, status, live: null, session: null, state: "idle", sortTime: 0, watched: false };
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
    for (const person of state.people) cards.set(person.id, buildCard(person, false));
    // The room's tools and totals are for a room: a trainee's one curator needs neither.
    $("people-tools").hidden = state.people.length < 2;
    $("totals").hidden = state.people.length < 2;
    layoutPeople();
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

  // Every conversation on the person's phones, oldest first (one person may have two calls).
  function conversations(person, byDevice) {
    const list = [];
    for (const extension of person.extensions) {
      for (const channel of byDevice.get(extension.device) || []) {
        if (isConversation(channel)) list.push(channel);
      }
    }
    return list.sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
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

  const known = (value) => value && value !== "<unknown>";

  // The other party of a call, name and number apart ("Mrs Hudson · 5550199"). A click-to-call's
  // connected line is the caller's own phone: the number it dialled is the board's `dialled`.
  function otherParty(channel) {
    if (channel.dialled) return channel.dialled;
    let name = known(channel.connected_name) ? channel.connected_name : "";
    const number = known(channel.connected_num) ? channel.connected_num : "";
    if (name === number) name = "";
    return [name, number].filter(Boolean).join(" · ");
  }

  function press(card, mode) {
    if (!card.live || staleReason() !== null) return;
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

  // What the PBX said about the person's phone(s): offline wins, then online, else unknown.
  function presenceOf(person) {
    let best = null;
    const rank = { offline: 2, online: 1, unknown: 0 };
    for (const extension of person.extensions) {
      const phone = state.phones.get(extension.device);
      const presence = phone ? phone.presence : "unknown";
      if (best === null || rank[presence] > rank[best.presence]) best = { presence, phone };
    }
    return best || { presence: "none", phone: null };
  }

  function presenceText(found) {
    if (found.presence === "none") return "";
    const phone = found.phone;
    if (found.presence === "offline") {
      if (phone.reach === "unregistered") return L.phone_unregistered;
      if (phone.reach === "unreachable") return L.phone_unreachable;
      if (phone.state === "invalid") return L.phone_invalid;
      return L.phone_unavailable;
    }
    if (found.presence === "online") return L.phone_online;
    return L.phone_unknown;
  }

  function renderCard(card, byDevice) {
    const live = liveCall(card.person, byDevice);
    card.live = live;
    const channel = live && live.channel;
    const found = presenceOf(card.person);
    let badgeState = "idle";
    let badgeText = L.idle;
    if (channel && !isConversation(channel)) { badgeState = "spying"; badgeText = doing(channel); }
    else if (channel && channel.state === "up") { badgeState = "in_call"; badgeText = L.in_call; }
    else if (channel && channel.state === "ringing") { badgeState = "ringing"; badgeText = L.ringing; }
    else if (channel) { badgeState = "dialling"; badgeText = L.dialling; }
    else if (found.presence === "offline") { badgeState = "offline"; badgeText = L.offline; }
    if (card.badge.dataset.state !== badgeState || card.badge.textContent !== badgeText) {
      card.badge.dataset.state = badgeState;
      card.badge.textContent = badgeText;
    }
    card.root.dataset.state = badgeState;
    card.state = badgeState;
    card.presence.dataset.presence = found.presence;
    card.presence.textContent = presenceText(found);
    card.presence.title = found.presence === "unknown" ? L.phone_unknown_why : found.presence === "online" ? L.phone_online_why : "";
    card.presence.hidden = found.presence === "none";
    card.root.dataset.presence = found.presence;

    // One line per conversation: who, in what state; the clocks are filled by tickCard.
    const calls = conversations(card.person, byDevice);
    card.callList = calls;
    const rows = card.calls.children;
    while (rows.length > calls.length) card.calls.lastChild.remove();
    while (rows.length < calls.length) {
      const row = el("li", { class: "call" });
      row.append(el("span", { class: "call-state" }), el("span", { class: "party" }), el("span", { class: "time" }));
      card.calls.append(row);
    }
    calls.forEach((call, i) => {
      const row = rows[i];
      const word = call.state === "up" ? L.in_call : call.state === "ringing" ? L.ringing : L.dialling;
      row.dataset.state = call.state === "up" ? "in_call" : call.state === "ringing" ? "ringing" : "dialling";
      row.dataset.channel = call.name;
      row.children[0].textContent = word;
      row.children[1].textContent = otherParty(call) || L.no_number;
    });
    card.calls.hidden = !calls.length;

    // Who is on this call, as people and modes (the board names the spying phone, not its Local leg).
    const watchers = channel && channel.watchers ? channel.watchers : [];
    card.watched = calls.some((call) => call.watchers && call.watchers.length);
    show(card.listeners, watchers.map((w) => fmt(L["watcher_" + (w.mode || "listen")], { name: nameOfDevice(w.device) })).join(", "));
    tickCard(card);

    const session = live ? sessions.get(live.extension.id) : null;
    card.session = session && LIVE_SESSION.has(session.state) ? session : null;
    const inCall = channel && channel.state === "up" && isConversation(channel);
    const stale = staleReason();
    for (const mode of MODES) {
      const button = card.buttons[mode];
      if (!button) continue;
      const allowed = live ? live.extension.modes.includes(mode) : card.person.extensions.some((e) => e.modes.includes(mode));
      const active = Boolean(card.session && card.session.mode === mode);
      button.hidden = !card.person.extensions.some((e) => e.modes.includes(mode));
      // The mode in use is pressed and active, not disabled: pressing it again changes nothing.
      button.disabled = stale !== null || !(allowed && inCall);
      button.title = stale !== null ? stale : "";
      button.textContent = card.session && !active ? L.switch_to + " " + L[mode].toLowerCase() : L[mode];
      button.setAttribute("aria-pressed", active ? "true" : "false");
    }
    if (card.buttons.pickup) {
      card.buttons.pickup.hidden = !(channel && channel.state === "ringing" && live.extension.pickup);
      card.buttons.pickup.disabled = stale !== null;
      card.buttons.pickup.title = stale !== null ? stale : "";
    }
    card.stop.hidden = !card.session;
    card.stop.disabled = stale !== null;
    card.stop.title = stale !== null ? stale : "";
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = String(seconds % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + s : m + ":" + s;
  }

  // Talk time for an answered call, ring time while ringing, time idle since the phone's last
  // call ended (when the board saw it end); long rings and long calls are marked.
  function tickCard(card) {
    const t = now();
    card.sortTime = 0;
    card.longest = 0;
    (card.callList || []).forEach((call, i) => {
      const row = card.calls.children[i];
      if (!row) return;
      const time = row.children[2];
      let seconds = null;
      let long = "";
      if (call.state === "up" && (call.answered_at || call.created_at)) {
        seconds = t - (call.answered_at || call.created_at);
        if (seconds >= CONFIG.long_call_seconds) long = "call";
        card.longest = Math.max(card.longest, seconds);
        time.textContent = fmt(L.talk_time, { time: duration(seconds) });
      } else if (call.created_at) {
        seconds = t - call.created_at;
        if (call.state === "ringing" && seconds >= CONFIG.long_ring_seconds) long = "ring";
        time.textContent = fmt(call.state === "ringing" ? L.ring_time : L.dial_time, { time: duration(seconds) });
      } else {
        time.textContent = "";
      }
      card.sortTime = Math.max(card.sortTime, seconds || 0);
      if (row.dataset.long !== long) {
        if (long) row.dataset.long = long;
        else delete row.dataset.long;
      }
    });
    let idleText = "";
    if (card.state === "idle" || card.state === "offline") {
      let since = null;
      for (const extension of card.person.extensions) {
        const phone = state.phones.get(extension.device);
        if (phone && phone.idle_since && (since === null || phone.idle_since > since)) since = phone.idle_since;
      }
      if (since !== null) {
        idleText = fmt(L.idle_time, { time: duration(t - since) });
        card.sortTime = t - since;
      }
    }
    card.idle.textContent = idleText;
    card.idle.hidden = !idleText;
    const long = card.calls.querySelector("[data-long]");
    if (long) card.root.dataset.long = long.dataset.long;
    else delete card.root.dataset.long;
  }

  // --- the room: grouping, search, filter, sort, compact list, totals ----------------------------
  function loadView() {
    const defaults = { search: "", filter: "all", sort: "name", group: true, compact: false, collapsed: [] };
    try {
      const saved = JSON.parse(localStorage.getItem(VIEW_KEY) || "{}");
      return { ...defaults, ...saved, search: "" };
    } catch (e) {
      return defaults;
    }
  }

  function saveView() {
    try {
      const { search, ...kept } = view;
      void search;
      localStorage.setItem(VIEW_KEY, JSON.stringify(kept));
    } catch (e) { /* private mode: the view is not kept */ }
  }

  function teamsOf(people) {
    const teams = new Map();
    for (const person of people) {
      const key = person.team === null || person.team === undefined ? "none" : String(person.team);
      if (!teams.has(key)) teams.set(key, { key, name: person.team_name ? fmt(L.team_of, { name: person.team_name }) : L.no_team, people: [] });
      teams.get(key).people.push(person);
    }
    return [...teams.values()].sort((a, b) => (a.key === "none") - (b.key === "none") || a.name.localeCompare(b.name));
  }

  // Puts the people's cards in their groups (rebuilt when the people or the grouping change).
  function layoutPeople() {
    const box = $("people");
    box.replaceChildren();
    box.classList.toggle("compact", view.compact);
    const people = state.people;
    if (!people.length) { box.append(el("p", { class: "empty" }, L.nobody)); return; }
    const teams = teamsOf(people);
    const grouped = view.group && teams.length > 1;
    $("people-group").checked = view.group;
    $("people-group").closest("p").hidden = teams.length < 2; // one team: nothing to group
    if (!grouped) {
      const grid = el("div", { class: "grid" });
      for (const person of people) grid.append(cards.get(person.id).root);
      box.append(grid);
      return;
    }
    for (const team of teams) {
      const details = el("details", { class: "team", "data-team": team.key });
      if (!view.collapsed.includes(team.key)) details.open = true;
      const summary = el("summary");
      summary.append(el("span", { class: "team-name" }, team.name), el("span", { class: "team-count" }));
      details.append(summary);
      const grid = el("div", { class: "grid" });
      for (const person of team.people) grid.append(cards.get(person.id).root);
      details.append(grid);
      details.addEventListener("toggle", () => {
        view.collapsed = view.collapsed.filter((key) => key !== team.key);
        if (!details.open) view.collapsed.push(team.key);
        saveView();
      });
      box.append(details);
    }
  }

  function matchesSearch(person, query) {
    if (!query) return true;
    const haystack = [person.name, ...person.extensions.map((e) => e.device + " " + e.label)].join(" ").toLowerCase();
    return haystack.includes(query);
  }

  function matchesFilter(card) {
    switch (view.filter) {
      case "in_call": return card.state === "in_call";
      case "ringing": return card.state === "ringing";
      case "idle": return card.state === "idle";
      case "offline": return card.root.dataset.presence === "offline";
      case "monitored": return card.watched;
      default: return true;
    }
  }

  // Shows, hides and orders the cards inside each group; counts what each group shows.
  function arrange() {
    const query = view.search.trim().toLowerCase();
    let shown = 0;
    for (const grid of $("people").querySelectorAll(".grid")) {
      const list = [...grid.children].map((root) => cards.get(Number(root.dataset.person))).filter(Boolean);
      list.sort((a, b) => {
        if (view.sort === "state") return STATE_ORDER[a.state] - STATE_ORDER[b.state] || a.person.name.localeCompare(b.person.name);
        if (view.sort === "duration") return b.sortTime - a.sortTime || a.person.name.localeCompare(b.person.name);
        return a.person.name.localeCompare(b.person.name);
      });
      let visible = 0;
      list.forEach((card, i) => {
        const hide = !(matchesSearch(card.person, query) && matchesFilter(card));
        if (card.root.hidden !== hide) card.root.hidden = hide;
        if (!hide) visible += 1;
        if (grid.children[i] !== card.root) grid.insertBefore(card.root, grid.children[i] || null);
      });
      shown += visible;
      const details = grid.closest("details");
      if (details) {
        details.querySelector(".team-count").textContent = fmt(L.team_count, { shown: visible, total: list.length });
        details.hidden = visible === 0;
      }
    }
    $("people-none").hidden = shown > 0 || !state.people.length;
  }

  function renderTotals() {
    const counts = { in_call: 0, ringing: 0, idle: 0, offline: 0, monitored: 0 };
    let longest = 0;
    for (const person of state.people) {
      const card = cards.get(person.id);
      if (!card) continue;
      if (card.state === "in_call") counts.in_call += 1;
      else if (card.state === "ringing") counts.ringing += 1;
      else if (card.state === "idle") counts.idle += 1;
      if (card.root.dataset.presence === "offline") counts.offline += 1;
      if (card.watched) counts.monitored += 1;
      longest = Math.max(longest, card.longest || 0);
    }
    for (const [key, value] of Object.entries(counts)) {
      const node = document.querySelector(`#totals [data-total="${key}"] .value`);
      if (node) node.textContent = String(value);
    }
    const node = document.querySelector('#totals [data-total="longest"] .value');
    if (node) node.textContent = longest ? duration(longest) : "–";
  }

  const toolbar = {
    search: $("people-search"), filter: $("people-filter"), sort: $("people-sort"),
    group: $("people-group"), compact: $("people-compact"),
  };
  toolbar.filter.value = view.filter;
  toolbar.sort.value = view.sort;
  toolbar.compact.checked = view.compact;
  toolbar.search.addEventListener("input", () => { view.search = toolbar.search.value; if (state) arrange(); });
  toolbar.filter.addEventListener("change", () => { view.filter = toolbar.filter.value; saveView(); if (state) arrange(); });
  toolbar.sort.addEventListener("change", () => { view.sort = toolbar.sort.value; saveView(); if (state) arrange(); });
  toolbar.group.addEventListener("change", () => { view.group = toolbar.group.checked; saveView(); if (state) { layoutPeople(); arrange(); } });
  toolbar.compact.addEventListener("change", () => { view.compact = toolbar.compact.checked; saveView(); $("people").classList.toggle("compact", view.compact); });

  // Every card is rendered after each frame: the channels are grouped by phone once, not walked
  // again for every extension of every card.
  function render() {
    updateStale();
    const byDevice = new Map();
    for (const channel of state.channels.values()) {
      const list = byDevice.get(channel.device);
      if (list) list.push(channel);
      else byDevice.set(channel.device, [channel]);
    }
    for (const card of cards.values()) renderCard(card, byDevice);
    arrange();
    renderTotals();
    // For the page's other scripts (the live grading panel, coaching.js): the board as just drawn.
    document.dispatchEvent(new CustomEvent("dashboard:render", { detail: { state, cards, serverNow } }));
  }

  setInterval(() => {
    if (!state || frozenAt !== null) return; // a stale board's clocks stand still
    for (const card of cards.values()) tickCard(card);
    if (view.sort === "duration") arrange();
    renderTotals();
  }, 1000);

  // Click-to-call: the server validates the number again and answers with call.status.
  const dialForm = $("dial-form");
  if (dialForm) {
    dialForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const number = $("dial-number").value.trim();
      if (!number) return;
      stamp($("dial-status"), "");
      send({ type: "dial", number });
    });
  }
  connect();
})();
