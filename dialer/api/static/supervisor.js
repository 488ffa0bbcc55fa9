// The supervisor page: agents by state, calls in progress, campaigns with their abandonment and controls.
"use strict";

(() => {
  const { api, attempt, $, el, duration, words } = Dialer;
  const POLL_MS = 2000;
  const ORDER = ["on_call", "reserved", "wrap_up", "ready", "paused", "logged_out"];
  const STATE_TEXT = {
    on_call: "On call",
    reserved: "Call coming",
    wrap_up: "Wrap-up",
    ready: "Ready",
    paused: "Paused",
    logged_out: "Not dialing",
  };

  let agents = [];
  let names = {}; // campaign id -> name
  let seenAt = 0;
  let shownCampaigns = "";

  const pct = (x) => (100 * x).toLocaleString([], { maximumFractionDigits: 2 }) + " %";

  function span(seconds) {
    const [n, unit] =
      seconds >= 86400 ? [seconds / 86400, "day"] : seconds >= 3600 ? [seconds / 3600, "hour"] : [seconds / 60, "minute"];
    const r = Math.round(n);
    return `${r} ${unit}${r === 1 ? "" : "s"}`;
  }

  async function refresh() {
    const [a, calls, campaigns] = await Promise.all([
      api("GET", "/api/agents"),
      api("GET", "/api/calls"),
      api("GET", "/api/campaigns"),
    ]);
    const rates = await Promise.all(
      campaigns.map((c) =>
        c.pacing === null
          ? Promise.resolve(null)
          : api("GET", `/api/campaigns/${c.id}/abandonment`).catch((e) => ({ problem: e.message })),
      ),
    );
    agents = a;
    names = Object.fromEntries(campaigns.map((c) => [String(c.id), c.name]));
    seenAt = performance.now();
    renderAgents();
    renderCalls(calls);
    renderCampaigns(campaigns, rates);
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }

  function renderAgents() {
    const sorted = [...agents].sort(
      (x, y) => ORDER.indexOf(x.state) - ORDER.indexOf(y.state) || x.agent_id.localeCompare(y.agent_id),
    );
    const counts = ORDER.map((s) => [s, agents.filter((x) => x.state === s).length]).filter(([, n]) => n);
    $("agent-counts").textContent = counts.map(([s, n]) => `${n} ${STATE_TEXT[s].toLowerCase()}`).join(" · ");
    $("agents").replaceChildren(
      ...sorted.map((x) =>
        el(
          "tr",
          { "data-agent": x.agent_id },
          el("td", { class: "strong", text: x.agent_id }),
          el(
            "td",
            {},
            el("span", { class: "badge", "data-state": x.state, text: STATE_TEXT[x.state] || words(x.state) }),
            x.pause_reason ? " " + words(x.pause_reason) : "",
            x.pause_after_call ? " (pause after call)" : "",
          ),
          el("td", { class: "num elapsed", "data-base": x.seconds_in_state, text: duration(x.seconds_in_state) }),
          el("td", { text: x.campaigns.map((id) => names[id] || id).join(", ") }),
          el(
            "td",
            {},
            el("button", {
              type: "button",
              class: "quiet small",
              text: "Log out",
              onclick: () =>
                attempt(async () => {
                  await api("POST", `/api/agents/${encodeURIComponent(x.agent_id)}/logout`);
                  await refresh();
                }),
            }),
          ),
        ),
      ),
    );
    if (!agents.length) $("agents").append(el("tr", {}, el("td", { colspan: 5, class: "none", text: "No agent logged in." })));
  }

  function renderCalls(calls) {
    $("call-count").textContent = calls.length ? String(calls.length) : "";
    $("calls").replaceChildren(
      ...calls.map((c) =>
        el(
          "tr",
          {},
          el("td", { text: c.campaign_name }),
          el("td", { text: words(c.state) }),
          el("td", { text: c.agent_id || "—" }),
          el("td", { class: "num", text: c.number }),
          el("td", { class: "num", text: duration(c.seconds) }),
        ),
      ),
    );
    if (!calls.length) $("calls").append(el("tr", {}, el("td", { colspan: 5, class: "none", text: "No call in progress." })));
  }

  function fact(label, value) {
    return el("div", { class: "fact", title: label === "Dial level" ? "calls in progress per agent taking calls" : null }, el("div", { class: "label", text: label }), el("div", { class: "value", text: value }));
  }

  function abandonment(rate) {
    if (!rate) return el("p", { class: "note", text: "Not dialed by this node: no abandonment figures here." });
    if (rate.problem) return el("p", { class: "note", text: rate.problem });
    const share = rate.cap > 0 ? Math.min(1, rate.rate / rate.cap) : 1;
    return el(
      "div",
      { class: "abandon" + (rate.over_cap ? " over" : "") },
      el("div", {
        class: "abandon-text",
        text:
          `Abandoned ${pct(rate.rate)} of ${rate.person_answered} answered over ${span(rate.window_s)} ` +
          `(cap ${pct(rate.cap)}; ${rate.abandoned} abandoned, room for ${Math.floor(rate.budget_left)} more)`,
      }),
      el("div", { class: "meter" }, el("div", { class: "fill", style: `width: ${(100 * share).toFixed(1)}%` })),
    );
  }

  function renderCampaigns(campaigns, rates) {
    const key = JSON.stringify([campaigns, rates]);
    if (key === shownCampaigns) return;
    shownCampaigns = key;
    $("campaigns").replaceChildren(
      ...campaigns.map((c, i) => {
        const outcomes = Object.entries(c.outcomes);
        const blocked = Object.values(c.blocked).reduce((a, b) => a + b, 0);
        const control = (action, label, cls, done) =>
          el("button", {
            type: "button",
            class: cls + " big",
            text: label,
            disabled: c.status === done,
            onclick: () => {
              if (action === "stop" && !confirm(`Stop campaign ${c.name}?`)) return;
              attempt(async () => {
                await api("POST", `/api/campaigns/${c.id}/${action}`);
                await refresh();
              });
            },
          });
        return el(
          "article",
          { class: "campaign-card", "data-campaign": c.id },
          el(
            "div",
            { class: "campaign-top" },
            el("h3", { text: c.name }),
            el("span", { class: "badge status", "data-status": c.status, text: words(c.status) }),
            el(
              "div",
              { class: "controls" },
              control("start", "Start", "go", "running"),
              control("pause", "Pause", "warn", "paused"),
              control("stop", "Stop", "danger", "stopped"),
            ),
          ),
          el(
            "div",
            { class: "facts" },
            fact("Pacing", c.pacing ? words(c.pacing) : "not on this node"),
            fact("Dial level", c.dial_level === null ? "—" : c.dial_level.toFixed(2)),
            fact("Calls now", String(c.lines)),
            fact("Agents on it", String(c.agents)),
          ),
          el(
            "div",
            { class: "outcomes" },
            el("span", { class: "label", text: "Calls by outcome: " }),
            outcomes.length
              ? outcomes.map(([k, n]) => `${words(k)} ${n}`).join(" · ")
              : "none yet",
            blocked ? ` · blocked by the gate ${blocked}` : "",
          ),
          abandonment(rates[i]),
        );
      }),
    );
    if (!campaigns.length) $("campaigns").append(el("p", { class: "none", text: "No campaign yet." }));
  }

  function tick() {
    const elapsed = (performance.now() - seenAt) / 1000;
    for (const td of document.querySelectorAll("#agents td.elapsed")) {
      td.textContent = duration(Number(td.dataset.base) + elapsed);
    }
  }

  async function loop() {
    await attempt(refresh, false);
    setTimeout(loop, POLL_MS);
  }

  Dialer.signIn(() => {
    $("board").hidden = false;
    setInterval(tick, 500);
    loop();
  });
})();
