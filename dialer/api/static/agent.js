// The agent screen: the desk's state every second, the call on the desk, one-click qualification.
"use strict";

(() => {
  const { api, attempt, $, el, duration, when, words } = Dialer;
  const POLL_MS = 1000;
  const STATE_TEXT = {
    logged_out: "Not dialing",
    paused: "Paused",
    ready: "Ready",
    reserved: "Call coming",
    on_call: "On call",
    wrap_up: "Wrap-up",
  };

  let desk = null; // the last GET /api/me desk
  let seenAt = 0; // when it was read (performance.now)
  let call = null; // the last GET /api/me/call
  let lastDone = ""; // what the agent qualified last, shown while waiting
  let booked = null; // the field visit booked on this call (POST /api/calendar/appointments)

  const since = () => (desk ? desk.seconds_in_state + (performance.now() - seenAt) / 1000 : 0);

  async function refresh() {
    const me = await api("GET", "/api/me");
    desk = me.desk;
    seenAt = performance.now();
    const before = call;
    const phase = desk.state === "on_call" ? "talking" : desk.state === "wrap_up" ? "wrap_up" : null;
    if (!desk.attempt_id || !phase) {
      call = null;
    } else if (!call || call.attempt_id !== desk.attempt_id || call.phase !== phase) {
      try {
        const fresh = await api("GET", "/api/me/call");
        if (!call || call.attempt_id !== fresh.attempt_id) newCall(fresh);
        const scriptFor = !call || call.attempt_id !== fresh.attempt_id ? fresh.attempt_id : null;
        call = fresh;
        if (scriptFor) attempt(() => loadScript(scriptFor), false);
      } catch (e) {
        if (!(e instanceof Dialer.ApiError && e.status === 404)) throw e;
        call = null;
      }
    }
    if (before && !call) {
      // Gone without the agent's click: the wrap-up limit qualified it, or it never reached wrap-up.
      lastDone =
        before.phase === "wrap_up"
          ? "The wrap-up time ran out: the call got the campaign's default qualification"
          : "The call ended without a wrap-up (an answering machine, or the line dropped)";
    }
    render();
  }

  function render() {
    const state = desk ? desk.state : "logged_out";
    const stateBox = $("state");
    stateBox.textContent = STATE_TEXT[state] || words(state);
    stateBox.dataset.state = state;
    $("pause-note").textContent =
      state === "paused" && desk.pause_reason
        ? "Reason: " + words(desk.pause_reason)
        : desk && desk.pause_after_call
          ? "Pause (" + words(desk.pause_after_call) + ") after this call"
          : "";
    document.title = (STATE_TEXT[state] || words(state)) + " · Agent · dialer";
    for (const id of ["since-label", "since", "pause-label", "pause-row"]) $(id).hidden = state === "logged_out";
    $("start").hidden = state !== "logged_out";
    $("ready").hidden = state !== "paused";
    const pausable = ["ready", "paused", "wrap_up"].includes(state);
    $("pause").disabled = !pausable;
    $("reason").disabled = !pausable;
    $("stop").hidden = !["ready", "paused"].includes(state);
    $("idle").hidden = !!call;
    $("call").hidden = !call;
    $("idle-text").textContent =
      state === "logged_out"
        ? "Press “Start dialing”, then “Ready”: calls come to this screen."
        : state === "paused"
          ? (lastDone ? lastDone + " · " : "") + "Paused: press “Ready” to take calls."
          : (lastDone ? lastDone + " · " : "") + "Waiting for a call…";
    if (call) {
      const talking = call.phase === "talking";
      $("phase").textContent = talking ? "Talking" : "Wrap-up";
      $("phase").dataset.phase = call.phase;
      $("hangup").hidden = !talking;
      $("qualify-hint").textContent = talking ? "(after the hang-up)" : "one click";
      for (const b of $("codes").querySelectorAll("button")) b.disabled = talking;
    }
    tick();
  }

  function tick() {
    $("since").textContent = duration(since());
    if (!call) return;
    if (call.phase === "talking") {
      $("timer-label").textContent = "Talk time";
      $("timer").textContent = duration(since());
      $("timer").classList.remove("late");
    } else if (call.wrap_up_limit_s) {
      const left = call.wrap_up_limit_s - since();
      $("timer-label").textContent = "Wrap-up time left";
      $("timer").textContent = duration(left);
      $("timer").classList.toggle("late", left < 15);
    } else {
      $("timer-label").textContent = "Wrap-up";
      $("timer").textContent = duration(since());
    }
  }

  function newCall(c) {
    for (const id of ["callback-at", "appointment-at", "comments-input"]) $(id).value = "";
    booked = null;
    $("slots").replaceChildren();
    $("visit-note").textContent = "";
    for (const id of ["info-template", "info-email"]) if ($(id)) $(id).value = "";
    if ($("follow-up")) $("follow-up").checked = false;
    $("agent-only").checked = false;
    $("campaign").textContent = c.campaign_name;
    $("number").textContent = "Number " + c.number;
    AgentSales.newCall();

    // Every earlier comment, by any agent, first: what the customer told us before.
    const comments = $("comments");
    comments.replaceChildren(
      ...c.comments.map((h) =>
        el(
          "li",
          {},
          el("div", { class: "said", text: h.comments }),
          el("div", {
            class: "meta",
            text: [when(h.at), h.agent_id ? "by " + h.agent_id : "", h.campaign, words(h.code)]
              .filter(Boolean)
              .join(" · "),
          }),
        ),
      ),
    );
    if (!c.comments.length) comments.append(el("li", { class: "none", text: "No comment yet on this customer." }));

    const fields = [];
    const person = c.customer || c.lead || {};
    const lead = c.lead || {};
    const name = [person.first_name || lead.first_name, person.last_name || lead.last_name].filter(Boolean);
    if (name.length) fields.push(["Name", name.join(" ")]);
    if (person.email || lead.email) fields.push(["Email", person.email || lead.email]);
    for (const [k, v] of Object.entries((c.customer && c.customer.identity) || {})) {
      if (!["first_name", "last_name", "email"].includes(k)) fields.push([words(k), String(v)]);
    }
    for (const [k, v] of Object.entries(lead.extra || {})) fields.push([words(k), String(v)]);
    if (lead.external_id) fields.push(["Reference", lead.external_id]);
    if (c.lead) fields.push(["Attempts", String(lead.attempts)]);
    $("customer").replaceChildren(
      ...fields.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]),
    );

    $("history").replaceChildren(
      ...c.history.map((h) =>
        el("li", {
          text: [when(h.at), h.campaign, words(h.code), h.result || ""].filter(Boolean).join(" · "),
        }),
      ),
    );
    if (!c.history.length) $("history").append(el("li", { class: "none", text: "First call to this customer." }));

    $("codes").replaceChildren(
      ...c.dispositions.map((d) =>
        el("button", { type: "button", class: "code", "data-code": d.code, text: d.label, onclick: () => qualify(d) }),
      ),
    );
  }

  // The campaign's script for this call, filled with the customer's and the agent's names.
  async function loadScript(attemptId) {
    $("script-card").hidden = true;
    let s;
    try {
      s = await api("GET", "/api/me/script");
    } catch (e) {
      if (e instanceof Dialer.ApiError && e.status === 404) return; // the campaign has no script
      throw e;
    }
    if (!call || s.attempt_id !== attemptId) return;
    $("script-version").textContent = "version " + s.version;
    $("script").replaceChildren(
      ...s.sections.map((x) => el("details", { open: true, "data-section": x.section }, el("summary", { text: x.title }), el("p", { text: x.text }))),
    );
    $("script-card").hidden = false;
  }

  function isoOf(id) {
    const v = $(id).value;
    return v ? new Date(v).toISOString() : undefined;
  }

  // The field calendar: the next free visits for the customer's area, booked in one click.
  function localInput(iso) {
    const d = new Date(iso);
    return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }

  async function showSlots(then) {
    if (!call) return;
    const id = call.attempt_id;
    $("slots").replaceChildren(); // the slots shown before may belong to another choice: never click those
    $("visit-note").textContent = "Looking for free visits…";
    const found = await api("GET", `/api/calendar/slots?attempt_id=${encodeURIComponent(id)}&count=6`);
    $("visit-note").textContent = found.slots.length
      ? `Free visits near ${found.postcode}: one click books it`
      : `No free visit fits near ${found.postcode} in the coming days`;
    $("slots").replaceChildren(
      ...found.slots.map((slot) =>
        el("button", {
          type: "button",
          class: "slot",
          text: `${when(slot.starts_at)} · ${slot.salesperson_name}`,
          onclick: () => attempt(() => bookSlot(id, slot, then)),
        }),
      ),
    );
  }

  async function bookSlot(id, slot, then) {
    try {
      booked = await api("POST", "/api/calendar/appointments", {
        attempt_id: id,
        salesperson_id: slot.salesperson_id,
        starts_at: slot.starts_at,
      });
    } catch (e) {
      await showSlots(then); // taken meanwhile: offer what is still free
      throw e;
    }
    $("slots").replaceChildren();
    $("appointment-at").value = localInput(booked.starts_at);
    $("visit-note").textContent = `Visit booked: ${when(booked.starts_at)} with ${slot.salesperson_name}`;
    if (then && call && call.attempt_id === id && call.phase === "wrap_up") qualify(then);
  }

  $("find-slots").addEventListener("click", () => attempt(() => showSlots(null)));

  function qualify(d) {
    if (!call) return;
    if (d.code === "appointment_set" && !booked && !isoOf("appointment-at")) {
      attempt(() => showSlots(d)); // choose the visit first; booking it qualifies the call
      return;
    }
    const id = call.attempt_id;
    const body = { code: d.code };
    const callbackAt = isoOf("callback-at");
    const appointmentAt = isoOf("appointment-at");
    const comments = $("comments-input").value.trim();
    if (callbackAt) {
      body.callback_at = callbackAt;
      body.callback_agent_only = $("agent-only").checked;
    }
    if (appointmentAt) body.appointment_at = appointmentAt;
    if (comments) body.comments = comments;
    if (d.code === "sale") body.sale = AgentSales.sale();
    if ($("info-template") && $("info-template").value) {
      body.information_template = $("info-template").value;
      const email = $("info-email").value.trim();
      if (email) body.identity = { ...(body.identity || {}), email };
    }
    if ($("follow-up") && $("follow-up").checked) body.follow_up = true;
    for (const b of $("codes").querySelectorAll("button")) b.disabled = true;
    attempt(async () => {
      try {
        await api("POST", `/api/calls/${encodeURIComponent(id)}/disposition`, body);
        lastDone = "Last call qualified: " + d.label;
        call = null;
      } finally {
        await refresh();
      }
    });
  }

  const act = (fn) => () => attempt(async () => {
    await fn();
    await refresh();
  });

  $("start").addEventListener("click", act(() => api("POST", "/api/me/login", {})));
  $("ready").addEventListener("click", act(() => api("POST", "/api/me/ready")));
  $("pause").addEventListener("click", act(() => api("POST", "/api/me/pause", { reason: $("reason").value })));
  $("stop").addEventListener("click", act(() => api("POST", "/api/me/logout")));
  $("hangup").addEventListener(
    "click",
    act(() => (call ? api("POST", `/api/calls/${encodeURIComponent(call.attempt_id)}/hangup`) : null)),
  );

  async function loop() {
    await attempt(refresh, false);
    setTimeout(loop, POLL_MS);
  }

  Dialer.signIn(
    () => {
      $("desk").hidden = false;
      setInterval(tick, 250);
      loop();
    },
    async () => {
      if (desk && desk.state !== "logged_out") {
        throw new Dialer.ApiError(409, "Stop dialing first (finish and qualify your call), then sign out.");
      }
    },
  );
})();
