// The supervisor page's sales in their withdrawal period (a withdrawal recorded in one click) and
// the customer records: search, then one record with every call and note.
"use strict";

(() => {
  const { api, attempt, $, el, when, words } = Dialer;
  const POLL_MS = 5000;
  const CHANNELS = ["post", "email", "phone", "form", "in_person"];

  function withdrawalCell(sale) {
    const channel = el("select", { "aria-label": "Channel of " + sale.ref },
      ...CHANNELS.map((c) => el("option", { value: c, text: words(c) })));
    const button = el("button", {
      type: "button",
      class: "warn",
      text: "Record",
      onclick: () =>
        attempt(async () => {
          const asked = `Record the withdrawal of ${sale.ref} (${sale.product}), received today by ${words(channel.value)}?`;
          if (!window.confirm(asked + " It stops the sale and cannot be undone.")) return;
          await api("POST", `/api/sales/${sale.id}/withdrawal`, {
            received_at: new Date().toISOString(),
            channel: channel.value,
          });
          await loadSales();
        }),
    });
    return el("td", {}, channel, " ", button);
  }

  async function loadSales() {
    const sales = await api("GET", "/api/sales");
    $("sale-count").textContent = String(sales.length);
    $("sales").replaceChildren(
      ...sales.map((s) =>
        el("tr", { "data-sale": String(s.id) },
          el("td", { text: s.ref }),
          el("td", { text: s.customer_name || "-" }),
          el("td", { text: s.product }),
          el("td", { text: s.price + " " + s.currency }),
          el("td", { text: s.withdrawal_end || "from delivery" }),
          el("td", { text: words(s.confirmation_channel) }),
          withdrawalCell(s),
        ),
      ),
    );
  }

  async function showRecord(id) {
    const r = await api("GET", `/api/customers/${id}`);
    $("customer-record").hidden = false;
    $("customer-name").textContent = [r.first_name, r.last_name].filter(Boolean).join(" ") || r.number_masked;
    $("customer-history").replaceChildren(
      ...r.history.map((h) =>
        el("li", {
          text: [when(h.at), h.campaign, words(h.code), h.agent_id ? "by " + h.agent_id : "", h.result || "",
            h.comments || ""].filter(Boolean).join(" · "),
        }),
      ),
    );
    $("customer-notes").replaceChildren(
      ...r.notes.map((n) =>
        el("li", {}, el("div", { class: "said", text: n.text }), el("div", { class: "meta", text: when(n.at) + " · by " + n.author })),
      ),
    );
  }

  $("customer-search").addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      const q = $("customer-q").value.trim();
      const found = await api("GET", "/api/customers?q=" + encodeURIComponent(q));
      $("customers").replaceChildren(
        ...found.map((c) =>
          el("tr", { "data-customer": String(c.id), class: "pick", onclick: () => attempt(() => showRecord(c.id)) },
            el("td", { text: c.number_masked }),
            el("td", { text: [c.first_name, c.last_name].filter(Boolean).join(" ") || "-" }),
            el("td", { text: c.email || "-" }),
            el("td", { text: c.last_contact_at ? when(c.last_contact_at) : "-" }),
          ),
        ),
      );
      if (!found.length) $("customers").append(el("tr", {}, el("td", { colspan: "4", text: "No record matches." })));
    });
  });

  async function loop() {
    const shown = !$("board").hidden;
    if (shown) await attempt(loadSales, false);
    setTimeout(loop, shown ? POLL_MS : 300); // signed out: look again soon, to fill the board once shown
  }
  loop();
})();
