// The call page's recording: the <audio> element plays the file in the browser (the server answers
// its range requests); "Play to my phone" sends {"type": "recording.play", "call": id} on the
// library's WebSocket, and the server's call.status messages for that call are shown below it.
(function () {
  "use strict";

  const section = document.querySelector("section.call-recording");
  if (!section) return;
  const callId = Number(section.dataset.call);
  const button = section.querySelector("button.play-call-recording");
  const status = section.querySelector(".call-recording-status");
  const audio = section.querySelector("audio");
  let socket = null;
  let retry = 0;

  audio.addEventListener("error", () => { status.textContent = section.dataset.unplayable; });

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/library/");
    socket.onopen = () => { retry = 0; button.disabled = false; };
    socket.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "call.status" && message.kind === "playback" && message.call === callId) {
        status.textContent = message.text;
      } else if (message.type === "error") {
        status.textContent = section.dataset.error + ": " + (message.message || message.code);
      }
    };
    socket.onclose = (event) => {
      socket = null;
      if (event.code === 4401) { location.reload(); return; } // the login session ended
      button.disabled = true;
      status.textContent = section.dataset.offline;
      const delay = Math.min(30, 2 ** retry);
      retry += 1;
      setTimeout(connect, delay * 1000);
    };
  }

  button.addEventListener("click", () => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    status.textContent = section.dataset.connecting;
    socket.send(JSON.stringify({ type: "recording.play", call: callId }));
  });
  connect();
})();
