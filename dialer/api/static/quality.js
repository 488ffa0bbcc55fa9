// The quality page: pick calls (a seeded weekly sample or a filter), score them beside the player
// with the dialer's own answers filled in, the scorecards, the complaints and their deadlines.
"use strict";

(() => {
  const { api, attempt, $, el, duration, when, words } = Dialer;
  const ANSWERS = [["yes", "Yes"], ["no", "No"], ["na", "N/A"]];
  let current = null; // the evaluation form of the call being scored

  function isoWeek(d) {
    const t = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
    const day = t.getUTCDay() || 7;
    t.setUTCDate(t.getUTCDate() + 4 - day);
    const start = new Date(Date.UTC(t.getUTCFullYear(), 0, 1));
    const week = Math.ceil(((t - start) / 86400000 + 1) / 7);
    return `${t.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
  }

  function showCalls(calls) {
    $("call-count").textContent = `${calls.length} call(s)`;
    $("calls").replaceChildren(
      ...calls.map((c) =>
        el(
          "tr",
          { class: c.evaluated ? "done" : "", "data-attempt": c.attempt_id },
          el("td", { text: when(c.at) }),
          el("td", { text: c.agent_id }),
          el("td", { text: c.campaign }),
          el("td", { text: words(c.code) || "—" }),
          el("td", { class: "num", text: c.talk_seconds === null ? "—" : duration(c.talk_seconds) }),
          el(
            "td",
            {},
            el("button", {
              type: "button",
              class: "small",
              text: "Evaluate",
              "aria-label": `Evaluate the call of ${c.agent_id} at ${when(c.at)}`,
              onclick: () => attempt(() => open(c.attempt_id)),
            }),
          ),
        ),
      ),
    );
    if (!calls.length) $("calls").append(el("tr", {}, el("td", { colspan: "6", class: "none", text: "No call." })));
  }

  function player(call) {
    if (!call.recording) return el("p", { class: "none", text: "No recording of this call." });
    // A signed link from the API: it plays without the token for a few minutes.
    const audio = el("audio", { controls: true, preload: "metadata", src: call.recording });
    const box = el("div", { class: "player" }, audio);
    audio.addEventListener("error", () => {
      box.replaceChildren(el("p", { class: "none", text: "The recording file is missing or unreadable: ask the PBX administrator." }));
    });
    return box;
  }

  function itemBox(item, fact) {
    const name = "item-" + item.id;
    const chosen = fact ? fact.answer : null;
    return el(
      "fieldset",
      { class: "item", "data-item": item.id },
      el("legend", { text: item.text + (item.weight !== 1 ? ` (×${item.weight})` : "") }),
      el(
        "div",
        { class: "answers" },
        ...ANSWERS.map(([value, label]) =>
          el("label", {}, el("input", { type: "radio", name, value, checked: chosen === value, required: true }), label),
        ),
        el("input", { type: "text", name: name + "-comment", maxlength: "2000", "aria-label": "Comment on " + item.text }),
      ),
      fact ? el("div", { class: "auto", text: "From the record: " + fact.reason }) : null,
    );
  }

  async function open(attemptId) {
    const form = await api("GET", `/api/quality/calls/${encodeURIComponent(attemptId)}/form`);
    current = form;
    for (const tr of $("calls").querySelectorAll("tr")) tr.classList.toggle("chosen", tr.dataset.attempt === attemptId);
    const c = form.call;
    $("eval-call").textContent = `${c.agent_id} · ${c.campaign} · ${when(c.at)} · ${words(c.code) || "not qualified"}`;
    $("player").replaceChildren(player(c));
    $("items").replaceChildren(
      ...form.grid.sections.flatMap((s) => [
        el("h3", { class: "section-title", text: s.title }),
        ...s.items.map((i) => itemBox(i, form.facts[i.id])),
      ]),
    );
    $("eval-comment").value = "";
    $("eval-result").textContent = `Grid ${form.grid.title}, version ${form.grid.version}`;
    $("evaluate").hidden = false;
  }

  async function save() {
    if (!current) return;
    const answers = {};
    for (const box of $("items").querySelectorAll("fieldset.item")) {
      const id = box.dataset.item;
      const picked = box.querySelector("input[type=radio]:checked");
      const comment = box.querySelector("input[type=text]").value.trim();
      if (!picked) throw new Dialer.ApiError(422, "Answer every item: " + box.querySelector("legend").textContent);
      answers[id] = { answer: picked.value, comment: comment || null };
    }
    const body = { grid: current.grid.name, answers, comment: $("eval-comment").value.trim() || null };
    const id = current.call.attempt_id;
    const saved = await api("POST", `/api/quality/calls/${encodeURIComponent(id)}/evaluations`, body);
    $("eval-result").textContent =
      saved.score === null ? "Saved: every item was N/A, no score." : `Saved: score ${saved.score} / 100`;
    const row = $("calls").querySelector(`tr[data-attempt="${CSS.escape(id)}"]`);
    if (row) row.classList.add("done");
    await loadCards();
  }

  const pct = (x) => `${Math.round(x * 100)}%`;

  async function loadCards() {
    const days = Number($("cards-period").value);
    const since = new Date(Date.now() - days * 86400000).toISOString();
    const by = $("cards-by").value;
    const cards = await api("GET", `/api/quality/scorecards?by=${by}&since=${encodeURIComponent(since)}`);
    $("scorecards").replaceChildren(
      ...cards.map((c) =>
        el(
          "tr",
          { "data-key": c.key },
          el("td", { class: "strong", text: c.key }),
          ...[c.calls, c.contacts, c.sales, c.appointments].map((v) => el("td", { class: "num", text: String(v) })),
          ...[c.talk_seconds, c.wrap_seconds, c.pause_seconds].map((v) => el("td", { class: "num", text: duration(v) })),
          el("td", { class: c.abandoned_while_ready ? "num overdue" : "num", text: String(c.abandoned_while_ready) }),
          el("td", { class: "num", text: pct(c.disposition_completeness) }),
          el("td", { class: "num", text: pct(c.record_completeness) }),
          el("td", { class: "num", text: String(c.evaluations) }),
          el("td", { class: "num avg", text: c.avg_score === null ? "—" : c.avg_score.toFixed(1) }),
          el("td", { class: "num", text: c.score_trend === null ? "—" : (c.score_trend > 0 ? "+" : "") + c.score_trend }),
          el("td", { class: "num", text: String(c.complaints) }),
        ),
      ),
    );
    if (!cards.length) $("scorecards").append(el("tr", {}, el("td", { colspan: "15", class: "none", text: "Nothing in this period." })));
  }

  const NEXT = {
    open: [["assign", "Assign to me"]],
    assigned: [["investigate", "Add findings"]],
    investigating: [["investigate", "Add findings"], ["answer", "Send answer"]],
    answered: [["close", "Close"]],
    closed: [],
  };

  async function loadComplaints() {
    const data = await api("GET", "/api/complaints");
    $("overdue").textContent = `${data.overdue} past their deadline`;
    $("complaints").replaceChildren(
      ...data.complaints.map((c) => {
        const text = el("input", { type: "text", maxlength: "4000", "aria-label": `Text for complaint ${c.id}` });
        const me = JSON.parse(sessionStorage.getItem("dialer.session") || "{}").user;
        const buttons = NEXT[c.status].map(([action, label]) =>
          el("button", {
            type: "button",
            class: "small",
            text: label,
            onclick: () =>
              attempt(async () => {
                const body = action === "assign" ? { assignee: me } : { text: text.value };
                await api("POST", `/api/complaints/${c.id}/${action}`, body);
                await loadComplaints();
              }),
          }),
        );
        const about = [c.agent_id, c.campaign_id ? "campaign " + c.campaign_id : "", c.attempt_id ? "call" : ""];
        return el(
          "tr",
          {},
          el("td", { text: String(c.id) }),
          el("td", { text: `${c.complainant} (${c.channel})` }),
          el("td", { text: about.filter(Boolean).join(" · ") }),
          el("td", { text: c.what }),
          el("td", { text: words(c.status) + (c.assigned_to ? " · " + c.assigned_to : "") }),
          el("td", { class: c.overdue ? "overdue" : "", text: when(c.due_at) }),
          el("td", { class: "actions" }, ["assigned", "investigating"].includes(c.status) ? text : null, ...buttons),
        );
      }),
    );
    if (!data.complaints.length) $("complaints").append(el("tr", {}, el("td", { colspan: "7", class: "none", text: "No complaint." })));
  }

  const SECTIONS = ["opening", "presentation", "questions", "objections", "closing"];

  async function loadScript() {
    const id = $("script-campaign").value;
    $("script-saved").textContent = "";
    if (!id) return;
    let s = null;
    try {
      s = await api("GET", `/api/campaigns/${id}/script`);
    } catch (e) {
      if (!(e instanceof Dialer.ApiError && e.status === 404)) throw e;
    }
    for (const name of SECTIONS) $("script-" + name).value = s ? s.sections[name] || "" : "";
    $("script-product").value = s && s.product ? s.product : "";
    $("script-saved").textContent = s ? `version ${s.version} by ${s.created_by}` : "no script yet";
  }

  async function saveScript() {
    const sections = {};
    for (const name of SECTIONS) sections[name] = $("script-" + name).value;
    const product = $("script-product").value.trim() || null;
    const s = await api("PUT", `/api/campaigns/${$("script-campaign").value}/script`, { sections, product });
    $("script-saved").textContent = `version ${s.version} saved`;
  }

  async function loadCampaigns() {
    const campaigns = await api("GET", "/api/campaigns");
    $("script-campaign").replaceChildren(...campaigns.map((c) => el("option", { value: String(c.id), text: c.name })));
    await loadScript();
  }

  $("sample-form").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const q = new URLSearchParams({ week: $("week").value, per_agent: $("per-agent").value, seed: $("seed").value });
      showCalls(await api("GET", "/api/quality/sample?" + q));
    });
  });
  $("filter-form").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const q = new URLSearchParams();
      if ($("filter-agent").value.trim()) q.set("agent", $("filter-agent").value.trim());
      if ($("filter-code").value.trim()) q.set("code", $("filter-code").value.trim());
      if ($("filter-since").value) q.set("since", new Date($("filter-since").value).toISOString());
      showCalls(await api("GET", "/api/quality/calls?" + q));
    });
  });
  $("eval-form").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(save);
  });
  $("cards-by").addEventListener("change", () => attempt(loadCards));
  $("script-campaign").addEventListener("change", () => attempt(loadScript));
  $("script-form").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(saveScript);
  });
  $("cards-period").addEventListener("change", () => attempt(loadCards));

  Dialer.signIn(() => {
    $("board").hidden = false;
    $("week").value = isoWeek(new Date());
    attempt(async () => {
      showCalls(await api("GET", "/api/quality/calls"));
      await loadCards();
      await loadComplaints();
      await loadCampaigns();
    });
  });
})();
