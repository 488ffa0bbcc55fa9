// On the agent screen: "a supervisor is listening" (when the campaign shows it), and recording on demand.
"use strict";

(() => {
  const { api, attempt, el, $ } = Dialer;
  const POLL_MS = 3000;
  const banner = el("div", { id: "listening", class: "note", role: "status", hidden: true, text: "A supervisor is listening." });
  const record = el("button", { id: "record", class: "quiet", type: "button", hidden: true, text: "Record this call" });
  let attemptId = null;

  record.addEventListener("click", () =>
    attempt(async () => {
      if (!attemptId) return;
      await api("POST", `/api/calls/${encodeURIComponent(attemptId)}/recording`, { on: true });
      record.textContent = "Recording";
      record.disabled = true;
    }),
  );

  async function poll() {
    const watched = await api("GET", "/api/monitoring/me");
    banner.hidden = !watched.listening;
    const onCall = watched.record_on_demand;
    if (onCall !== attemptId) {
      attemptId = onCall;
      record.textContent = "Record this call";
      record.disabled = false;
    }
    record.hidden = !attemptId;
  }

  async function loop() {
    if (sessionStorage.getItem("dialer.session")) await attempt(poll, false);
    setTimeout(loop, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const head = $("call") ? $("call").querySelector(".call-head") : null;
    (head || document.body).append(record);
    ($("desk") || document.body).prepend(banner);
    loop();
  });
})();
