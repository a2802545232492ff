// A call's coaching section beside its recording: a note's time plays the recording from there,
// and "The player's position" fills the note's time from where the player is. Without a player on
// the page (no recording) the times stay plain text.
(function () {
  "use strict";

  const section = document.getElementById("coaching");
  if (!section) return;
  const player = document.querySelector("main audio");
  if (!player) return;

  const clock = (seconds) => {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = String(seconds % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + s : m + ":" + s;
  };

  for (const button of section.querySelectorAll("button.seek")) {
    button.hidden = false;
    const text = button.nextElementSibling;
    if (text && text.classList.contains("offset-text")) text.hidden = true;
    button.addEventListener("click", () => {
      player.currentTime = Number(button.dataset.offset);
      player.play().catch(() => {});
    });
  }
  const fill = section.querySelector("button.from-player");
  const field = document.getElementById("note-offset");
  if (fill && field) {
    fill.hidden = false;
    fill.addEventListener("click", () => { field.value = clock(player.currentTime); field.focus(); });
  }
})();
