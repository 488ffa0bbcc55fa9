// The agent screen's customer record (verified fields, sales, notes) and the sale's terms.
"use strict";

const AgentSales = (() => {
  const { api, attempt, $, el, when, words } = Dialer;
  const SALE_FIELDS = {
    product: "sale-product",
    price: "sale-price",
    currency: "sale-currency",
    delivery_terms: "sale-delivery",
    installation_terms: "sale-installation",
    delivery_date: "sale-delivery-date",
    email: "sale-email",
    address: "sale-address",
  };

  // What the agent entered for a sale; an empty field is left out and the API names what is missing.
  function sale() {
    const out = {};
    for (const [key, id] of Object.entries(SALE_FIELDS)) {
      const value = $(id).value.trim();
      if (value) out[key] = key === "price" ? value.replace(",", ".") : value;
    }
    return out;
  }

  function none(list, text) {
    if (!list.children.length) list.append(el("li", { class: "none", text }));
  }

  // Every earlier call in full: who qualified it and when, the result, objections, dates, next actions.
  function showHistory(history) {
    if (!history.length) return; // the screen already says "First call to this customer."
    $("history").replaceChildren(
      ...history.map((h) =>
        el("li", {
          text: [
            when(h.at),
            h.campaign,
            words(h.code),
            h.agent_id ? "by " + h.agent_id : "",
            h.result || "",
            h.objections.length ? "objections: " + h.objections.join(", ") : "",
            h.callback_at ? "callback " + when(h.callback_at) : "",
            h.appointment_at ? "appointment " + when(h.appointment_at) : "",
            h.next_actions.length ? "next: " + h.next_actions.join(", ") : "",
          ]
            .filter(Boolean)
            .join(" · "),
        }),
      ),
    );
  }

  function show(record) {
    const r = record || { verified: [], sales: [], notes: [], history: [] };
    showHistory(r.history);
    $("verified").replaceChildren(
      ...r.verified.map((v) =>
        el("li", { text: [words(v.field) + ": " + v.value, v.by ? "by " + v.by : "", when(v.at)].filter(Boolean).join(" · ") }),
      ),
    );
    none($("verified"), "Nothing verified yet.");
    $("sales").replaceChildren(
      ...r.sales.map((s) =>
        el("li", {
          text: [s.ref, s.product, s.price + " " + s.currency, words(s.status),
            s.withdrawal_end ? "withdrawal until " + s.withdrawal_end : ""].filter(Boolean).join(" · "),
        }),
      ),
    );
    none($("sales"), "No sale yet.");
    $("notes").replaceChildren(
      ...r.notes.map((n) =>
        el("li", {}, el("div", { class: "said", text: n.text }), el("div", { class: "meta", text: when(n.at) + " · by " + n.author })),
      ),
    );
    none($("notes"), "No note yet.");
  }

  async function load() {
    try {
      show(await api("GET", "/api/me/call/record"));
    } catch (e) {
      if (!(e instanceof Dialer.ApiError && e.status === 404)) throw e;
      show(null);
    }
  }

  function newCall() {
    for (const id of Object.values(SALE_FIELDS)) $(id).value = "";
    $("sale-currency").value = "EUR";
    $("note-input").value = "";
    attempt(load, false);
  }

  $("note-add").addEventListener("click", () =>
    attempt(async () => {
      const text = $("note-input").value.trim();
      if (!text) return;
      await api("POST", "/api/me/call/notes", { text });
      $("note-input").value = "";
      await load();
    }),
  );

  return { sale, newCall };
})();
