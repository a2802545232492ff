// The live grading panel: while the user listens to, whispers to or barges in on a trainee's call
// (the board's `watchers` of that call name one of the user's own phones), a "Grade this call"
// panel opens on the trainee's card: a scorecard, a score per criterion, a comment, and coaching
// notes stamped with the moment of the call ("0:42"). It sends ids and scores only; the server
// decides whether this user may grade this trainee and computes the result.
// dashboard.js tells this file the board as drawn through the "dashboard:render" event.
(function () {
  "use strict";

  const source = document.getElementById("coaching-config");
  if (!source) return;
  const CONFIG = JSON.parse(source.textContent);
  const L = CONFIG.labels;
  const fmt = (text, values) => text.replace(/%\((\w+)\)s|%%/g, (match, key) => (key ? values[key] ?? "" : "%"));

  const panels = new Map(); // "<person id>/<uniqueid>" -> panel
  let scorecards = null; // the list, once fetched (a promise while in flight)
  let last = null; // the latest render's {state, cards, serverNow}
  let counter = 0;

  document.addEventListener("dashboard:render", (event) => {
    last = event.detail;
    update();
  });
  setInterval(tick, 1000);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = String(seconds % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + s : m + ":" + s;
  }

  async function request(url, body) {
    const options = body === undefined
      ? { credentials: "same-origin", headers: { Accept: "application/json" } }
      : {
        method: "POST", credentials: "same-origin", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": CONFIG.csrf },
      };
    try {
      const response = await fetch(url, options);
      let data = null;
      try { data = await response.json(); } catch (e) { data = null; }
      if (data && data.ok) return { ok: true, data };
      return { ok: false, message: data && data.message ? data.message : L.offline, field: data && data.field };
    } catch (e) {
      return { ok: false, message: L.offline };
    }
  }

  function loadScorecards() {
    if (scorecards === null) {
      scorecards = request(CONFIG.urls.scorecards).then((result) => (result.ok ? result.data.scorecards : []));
    }
    return scorecards;
  }

  // --- which calls the user is on --------------------------------------------------------------
  function myDevices(state) {
    return new Set((state.me.extensions || []).map((extension) => extension.device));
  }

  function update() {
    if (!last || !last.state) return;
    const mine = myDevices(last.state);
    const onCalls = new Set();
    for (const card of last.cards.values()) {
      if (card.own) continue;
      for (const call of card.callList || []) {
        if (!(call.watchers || []).some((watcher) => mine.has(watcher.device))) continue;
        const key = card.person.id + "/" + call.uniqueid;
        onCalls.add(key);
        if (!panels.has(key)) open(key, card.person, call);
        else panels.get(key).call = call; // answered_at arrives with the answer
      }
    }
    for (const [key, panel] of panels) {
      const card = last.cards.get(panel.person.id);
      if (panel.root && card && panel.root.parentElement !== card.root) card.root.append(panel.root);
      const live = onCalls.has(key);
      if (panel.live && !live) panel.endedAt = last.serverNow(); // the moment the user left the call
      panel.live = live;
      if (panel.ended) panel.ended.hidden = live;
    }
  }

  // Seconds into the call now (or when the user left it): the board's clock, epoch seconds.
  function offsetOf(panel) {
    const start = panel.call.answered_at || panel.call.created_at;
    if (!start || !last) return 0;
    const now = panel.live || panel.endedAt === null ? last.serverNow() : panel.endedAt;
    return Math.max(0, now - start);
  }

  function tick() {
    for (const panel of panels.values()) {
      if (panel.noteLabel) panel.noteLabel.textContent = fmt(L.note, { time: clock(panel.stamp ?? offsetOf(panel)) });
    }
  }

  // --- a panel ------------------------------------------------------------------------------------
  async function open(key, person, call) {
    const panel = { key, person, call, live: true, endedAt: null, stamp: null, root: null, replaces: null };
    panels.set(key, panel);
    const query = "?trainee=" + encodeURIComponent(person.id) + "&call=" + encodeURIComponent(call.uniqueid);
    const [known, cards] = await Promise.all([request(CONFIG.urls.call + query), loadScorecards()]);
    // The server says whether this user grades this person (a curator's own trainee, an admin).
    if (!known.ok || !known.data.can_grade) return;
    build(panel, known.data, cards);
    update();
  }

  function build(panel, known, cards) {
    const id = "cp" + (++counter);
    panel.id = id;
    const root = el("section", { class: "coaching-panel", "aria-labelledby": id + "-title", "data-call": panel.call.uniqueid });
    root.append(el("h4", { id: id + "-title" }, fmt(L.panel_of, { name: panel.person.name })));
    panel.ended = el("p", { class: "hint", hidden: "" }, L.ended);
    root.append(panel.ended);

    // Grading
    const form = el("form", { class: "cp-grade", novalidate: "" });
    const pick = el("p");
    pick.append(el("label", { for: id + "-card" }, L.scorecard));
    const select = el("select", { id: id + "-card" });
    for (const card of cards) select.append(el("option", { value: card.id }, card.name));
    pick.append(select);
    form.append(pick);
    const criteria = el("div", { class: "cp-criteria" });
    form.append(criteria);
    const commentRow = el("p");
    commentRow.append(el("label", { for: id + "-comment" }, L.comment));
    const comment = el("textarea", { id: id + "-comment", rows: "2", maxlength: "2000" });
    commentRow.append(comment);
    form.append(commentRow);
    const submit = el("button", { type: "submit" }, L.submit);
    form.append(submit);
    const result = el("p", { class: "cp-status", role: "status", "aria-live": "polite" });
    form.append(result);
    if (!cards.length) {
      form.replaceChildren(el("p", { class: "hint" }, L.no_scorecards));
    }
    root.append(form);
    Object.assign(panel, { form, select, criteria, comment, submit, result, cards });

    select.addEventListener("change", () => drawCriteria(panel, {}));
    drawCriteria(panel, {});
    const current = known.evaluations.find((evaluation) => evaluation.id === known.current);
    if (current) {
      graded(panel, current, fmt(L.already, { percent: current.percent, band: current.band_label, version: current.version }));
      const card = cards.find((c) => c.id === current.scorecard_id);
      if (card) {
        select.value = String(card.id);
        drawCriteria(panel, Object.fromEntries(current.scores.map((s) => [s.criterion, s.score])));
      }
      comment.value = current.comment;
    }
    form.addEventListener("submit", (event) => { event.preventDefault(); sendGrade(panel); });

    // Notes
    root.append(el("h5", {}, L.notes));
    const list = el("ol", { class: "cp-notes" });
    for (const note of known.notes) list.append(noteItem(note));
    root.append(list);
    const noteForm = el("form", { class: "cp-note", novalidate: "" });
    const noteHead = el("p", { class: "cp-note-head" });
    const noteLabel = el("label", { for: id + "-note" }, fmt(L.note, { time: clock(offsetOf(panel)) }));
    const restamp = el("button", { type: "button", class: "secondary", title: L.restamp_title }, L.restamp);
    noteHead.append(noteLabel, restamp);
    const noteText = el("textarea", { id: id + "-note", rows: "2", maxlength: "2000" });
    const noteButton = el("button", { type: "submit" }, L.add_note);
    const noteStatus = el("p", { class: "cp-status", role: "status", "aria-live": "polite" });
    noteForm.append(noteHead, noteText, noteButton, noteStatus);
    root.append(noteForm);
    Object.assign(panel, { list, noteLabel, noteText, noteStatus });
    // The note is about the moment the user started writing it, not when he pressed Add.
    noteText.addEventListener("input", () => { if (panel.stamp === null && noteText.value) panel.stamp = Math.floor(offsetOf(panel)); tick(); });
    restamp.addEventListener("click", () => { panel.stamp = Math.floor(offsetOf(panel)); tick(); noteText.focus(); });
    noteForm.addEventListener("submit", (event) => { event.preventDefault(); sendNote(panel); });

    const foot = el("p", { class: "cp-foot" });
    foot.append(el("a", { href: known.page }, L.open_page));
    const close = el("button", { type: "button", class: "secondary cp-close" }, L.close);
    close.addEventListener("click", () => { root.remove(); panels.delete(panel.key); });
    foot.append(close);
    root.append(foot);
    panel.root = root;
  }

  function drawCriteria(panel, selected) {
    const card = panel.cards.find((c) => String(c.id) === panel.select.value);
    panel.criteria.replaceChildren();
    if (!card) return;
    for (const criterion of card.criteria) {
      const name = "score-" + panel.id + "-" + criterion.id;
      const set = el("fieldset", { class: "criterion" + (criterion.critical ? " critical" : ""), "data-criterion": criterion.id });
      const legend = el("legend", {}, criterion.name + " ");
      legend.append(el("small", {}, fmt(L.weight, { weight: criterion.weight }) + (criterion.critical ? " · " + L.critical : "")));
      set.append(legend);
      if (criterion.description) set.append(el("p", { class: "hint" }, criterion.description));
      if (card.scale_max <= CONFIG.radio_scale_max) {
        const scale = el("div", { class: "scale" });
        for (let value = 0; value <= card.scale_max; value++) {
          const label = el("label");
          const input = el("input", { type: "radio", name, value: String(value) });
          if (selected[criterion.id] === value) input.checked = true;
          label.append(input, " " + value);
          scale.append(label);
        }
        set.append(scale);
      } else {
        const label = el("label", {}, fmt(L.score_of, { name: criterion.name }) + " (0–" + card.scale_max + ") ");
        const input = el("input", { type: "number", name, min: "0", max: String(card.scale_max) });
        if (selected[criterion.id] !== undefined) input.value = String(selected[criterion.id]);
        label.append(input);
        set.append(label);
      }
      panel.criteria.append(set);
    }
  }

  function graded(panel, evaluation, text) {
    panel.replaces = evaluation.id;
    panel.submit.textContent = L.submit_correction;
    panel.result.dataset.band = evaluation.band;
    panel.result.textContent = text + (evaluation.critical_failed ? " · " + L.critical_failed : "");
  }

  async function sendGrade(panel) {
    const scores = {};
    for (const set of panel.criteria.querySelectorAll("fieldset[data-criterion]")) {
      const chosen = set.querySelector("input[type=radio]:checked") || set.querySelector("input[type=number]");
      scores[set.dataset.criterion] = chosen && chosen.value !== "" ? chosen.value : "";
    }
    panel.submit.disabled = true;
    const result = await request(CONFIG.urls.evaluate, {
      trainee: panel.person.id, call: panel.call.uniqueid, scorecard: panel.select.value, scores,
      comment: panel.comment.value, replaces: panel.replaces, live: true,
    });
    panel.submit.disabled = false;
    if (!result.ok) {
      delete panel.result.dataset.band;
      panel.result.textContent = fmt(L.error, { message: result.message });
      const field = result.field && result.field.startsWith("score_")
        ? panel.criteria.querySelector(`fieldset[data-criterion="${result.field.slice(6)}"] input`) : null;
      if (field) field.focus();
      return;
    }
    const evaluation = result.data.evaluation;
    graded(panel, evaluation, fmt(L.saved, { percent: evaluation.percent, band: evaluation.band_label, version: evaluation.version }));
  }

  function noteItem(note) {
    const item = el("li", { "data-note": note.id });
    item.append(el("strong", {}, note.offset_label), " — " + note.text);
    return item;
  }

  async function sendNote(panel) {
    const text = panel.noteText.value.trim();
    if (!text) { panel.noteText.focus(); return; }
    const offset = panel.stamp ?? Math.floor(offsetOf(panel));
    const result = await request(CONFIG.urls.note, {
      trainee: panel.person.id, call: panel.call.uniqueid, offset, text, live: true,
    });
    if (!result.ok) {
      panel.noteStatus.textContent = fmt(L.error, { message: result.message });
      return;
    }
    const note = result.data.note;
    panel.list.append(noteItem(note));
    panel.noteStatus.textContent = fmt(L.note_saved, { time: note.offset_label });
    panel.noteText.value = "";
    panel.stamp = null;
    tick();
  }
})();
