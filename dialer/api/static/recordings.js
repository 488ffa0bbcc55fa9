// The recordings page: the calls you may hear (a player per call, or why there is none), and live monitoring.
"use strict";

(() => {
  const { api, attempt, $, el, duration, when } = Dialer;
  const PROBLEM = {
    missing: "File missing: it was deleted or never written.",
  };

  function problemText(problem) {
    return PROBLEM[problem] || "File unreadable (" + problem.replace(/^unreadable: ?/, "") + ").";
  }

  async function load() {
    const data = new FormData($("filters"));
    const query = new URLSearchParams();
    for (const key of ["campaign_id", "agent_id"]) {
      const value = String(data.get(key) || "").trim();
      if (value) query.set(key, value);
    }
    const rows = await api("GET", "/api/recordings" + (query.size ? "?" + query : ""));
    $("count").textContent = rows.length ? `${rows.length}` : "none";
    $("recordings").replaceChildren(
      ...rows.map((r) =>
        el(
          "tr",
          { "data-attempt": r.attempt_id },
          el("td", { text: when(r.started_at) }),
          el("td", { class: "strong", text: r.agent_id || "" }),
          el("td", { text: String(r.campaign_id) }),
          el("td", { class: "num", text: r.seconds === null ? "" : duration(r.seconds) }),
          el(
            "td",
            {},
            r.problem === null
              ? el("audio", { controls: true, preload: "none", src: r.audio_url })
              : el("span", { class: "problem", role: "status", text: problemText(r.problem) }),
          ),
          el("td", {}, r.download_url ? el("a", { href: r.download_url, text: "Download" }) : null),
        ),
      ),
    );
  }

  async function loadMonitors(session) {
    if (session.role === "agent") {
      $("monitor-card").hidden = true;
      return;
    }
    const rows = await api("GET", "/api/monitoring");
    $("monitors").replaceChildren(
      ...rows.map((m) =>
        el(
          "tr",
          {},
          el("td", { class: "strong", text: m.agent_id }),
          el("td", { text: m.mode }),
          el("td", { text: m.supervisor_id }),
          el(
            "td",
            {},
            el("button", {
              type: "button",
              class: "quiet small",
              text: "Hang up",
              onclick: () =>
                attempt(async () => {
                  await api("DELETE", `/api/monitoring/${encodeURIComponent(m.leg_id)}`);
                  await loadMonitors(session);
                }),
            }),
          ),
        ),
      ),
    );
  }

  Dialer.signIn((session) => {
    $("board").hidden = false;
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      attempt(load);
    });
    $("monitor-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData($("monitor-form"));
      const mode = event.submitter ? event.submitter.value : "listen";
      attempt(async () => {
        await api("POST", "/api/monitoring", { agent_id: data.get("agent_id"), phone: data.get("phone"), mode });
        await loadMonitors(session);
      });
    });
    attempt(load);
    attempt(() => loadMonitors(session));
  });
})();
