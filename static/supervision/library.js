// The library's "Play to my phone": a playback command on the library's own WebSocket. The server
// checks the right, audits the press and answers with call.status messages shown on the card.
(function () {
  "use strict";

  const L = JSON.parse(document.getElementById("library-labels").textContent);
  const buttons = Array.from(document.querySelectorAll("button.play"));
  const pageStatus = document.getElementById("library-status");
  let socket = null;
  let retry = 0;

  function statusOf(recordingId) {
    const card = document.querySelector('article[data-recording="' + recordingId + '"]');
    return card ? card.querySelector(".status") : pageStatus;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/library/");
    socket.onopen = () => { retry = 0; buttons.forEach((b) => { b.disabled = false; }); pageStatus.textContent = ""; };
    socket.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "call.status" && message.kind === "playback" && message.call === undefined) {
        statusOf(message.recording).textContent = message.text;
      } else if (message.type === "error") {
        pageStatus.textContent = L.error + ": " + (message.message || message.code);
      }
    };
    socket.onclose = (event) => {
      socket = null;
      if (event.code === 4401) { location.reload(); return; } // the login session ended
      buttons.forEach((b) => { b.disabled = true; });
      pageStatus.textContent = L.offline;
      const delay = Math.min(30, 2 ** retry);
      retry += 1;
      setTimeout(connect, delay * 1000);
    };
  }

  for (const button of buttons) {
    button.addEventListener("click", () => {
      if (!socket || socket.readyState !== WebSocket.OPEN) return;
      statusOf(button.dataset.recording).textContent = L.connecting;
      socket.send(JSON.stringify({ type: "playback", recording: Number(button.dataset.recording) }));
    });
  }
  connect();
})();
