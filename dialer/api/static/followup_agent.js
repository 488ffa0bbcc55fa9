// The agent screen's follow-up promises: the information templates to choose from (GET /api/followup/templates).
"use strict";

(() => {
  const { api, attempt, $, el } = Dialer;

  async function load() {
    const templates = await api("GET", "/api/followup/templates");
    $("info-template").replaceChildren(
      el("option", { value: "", text: "Nothing" }),
      ...templates.map((t) => el("option", { value: t.name, text: t.label })),
    );
  }

  // Once signed in (the sign-in card hidden and a token held), load the choices once.
  async function wait() {
    if ($("signin").hidden && $("who").textContent) {
      await attempt(load, false);
      return;
    }
    setTimeout(wait, 300);
  }
  wait();
})();
