// The supervisor page's follow-up block: tasks by kind and level, and the overdue ones to act on.
// The counts are GET /api/followup/summary's: the same as `dialer followup summary` and the metrics.
"use strict";

(() => {
  const { api, attempt, $, el, duration, when, words } = Dialer;
  const POLL_MS = 10000;
  const LEVELS = ["open", "overdue", "met", "missed", "refused"];

  async function refresh() {
    const [summary, overdue] = await Promise.all([
      api("GET", "/api/followup/summary"),
      api("GET", "/api/followup/tasks?overdue=true&limit=50"),
    ]);
    $("followup-counts").textContent = `${summary.overdue} overdue · ${summary.callbacks_overdue} callbacks`;
    $("followup-summary").replaceChildren(
      ...summary.kinds.map((k) =>
        el(
          "tr",
          { "data-kind": k.kind },
          el("td", { class: "strong", text: words(k.kind) }),
          ...LEVELS.map((lvl) => el("td", { class: `num ${lvl}`, "data-level": lvl, text: String(k[lvl]) })),
        ),
      ),
    );
    $("followup-overdue").replaceChildren(
      ...overdue.map((t) =>
        el(
          "tr",
          { "data-task": t.id },
          el("td", { text: words(t.kind) }),
          el("td", { text: when(t.due_at) }),
          el("td", { class: "num", text: duration(t.overdue_s) }),
          el("td", { text: t.campaign }),
          el("td", { text: t.number_masked }),
          el("td", { text: t.agent_id || "" }),
          el("td", { text: t.detail || "" }),
        ),
      ),
    );
    if (!overdue.length) {
      $("followup-overdue").append(el("tr", {}, el("td", { colspan: 7, class: "none", text: "Nothing overdue." })));
    }
  }

  // Starts once the supervisor is signed in (supervisor.js shows the board then).
  async function loop() {
    if (!$("board").hidden) await attempt(refresh, false);
    setTimeout(loop, $("board").hidden ? 500 : POLL_MS);
  }
  loop();
})();
