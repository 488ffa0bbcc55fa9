// Shared by the agent screen and the supervisor page: the API, signing in, errors, small helpers.
// The token lives in this tab's sessionStorage only; every error shown is the API's own message.
"use strict";

const Dialer = (() => {
  const KEY = "dialer.session";

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function session() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || "null");
    } catch (_) {
      return null;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    const s = session();
    if (s) headers.Authorization = "Bearer " + s.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let reply;
    try {
      reply = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (_) {
      throw new ApiError(0, "The dialer is not answering: check the network, then try again.");
    }
    if (reply.status === 204) return null;
    let data = null;
    try {
      data = await reply.json();
    } catch (_) {
      data = null;
    }
    if (!reply.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : "the dialer answered " + reply.status;
      throw new ApiError(reply.status, detail);
    }
    return data;
  }

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  let errorTimer = null;
  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => (box.hidden = true), 15000);
  }
  function clearError() {
    $("error").hidden = true;
  }

  // Runs an action; its error is shown as the API's message (a stale token goes back to sign-in).
  // A background refresh passes clear=false so that it does not hide the error of the agent's last click.
  async function attempt(action, clear = true) {
    try {
      const result = await action();
      if (clear) clearError();
      return result;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401 && session()) {
        sessionStorage.removeItem(KEY);
        location.reload();
        return undefined;
      }
      showError(e instanceof ApiError ? e.message : "Something went wrong in this page: reload it.");
      return undefined;
    }
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function when(iso) {
    if (!iso) return "";
    return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  const words = (code) => (code || "").replaceAll("_", " ");

  // Wires the sign-in form; onSignedIn(session) runs once a token is held (now or from this tab before).
  // beforeSignOut() may throw an ApiError to keep the user signed in (e.g. still dialing).
  function signIn(onSignedIn, beforeSignOut) {
    const form = $("signin-form");
    const start = (s) => {
      $("signin").hidden = true;
      $("who").textContent = `${s.user} · ${s.role}`;
      $("signout").hidden = false;
      onSignedIn(s);
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      attempt(async () => {
        const t = await api("POST", "/api/login", { user: data.get("user"), password: data.get("password") });
        const s = { token: t.token, user: t.user, role: t.role };
        sessionStorage.setItem(KEY, JSON.stringify(s));
        form.reset();
        start(s);
      });
    });
    $("signout").addEventListener("click", () =>
      attempt(async () => {
        if (beforeSignOut) await beforeSignOut();
        try {
          await api("POST", "/api/me/signout");
        } finally {
          sessionStorage.removeItem(KEY);
          location.reload();
        }
      }),
    );
    const s = session();
    if (s) start(s);
    else $("signin").hidden = false;
  }

  return { api, attempt, $, el, showError, duration, when, words, signIn, ApiError };
})();
