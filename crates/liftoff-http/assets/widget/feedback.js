/*
 * Liftoff feedback widget. Embed on any page:
 *
 *   <script src="https://liftoff.example.com/widget/feedback.js"
 *           data-key="lft_…ingest key…" data-user="user-42" defer></script>
 *
 * Options (attributes on the script tag):
 *   data-key       an ingest key (required; it can only submit, like PostHog's project key)
 *   data-user      the signed-in user's id; without it a random id kept in localStorage
 *   data-endpoint  Liftoff's base URL (default: where this script was loaded from)
 *   data-label     the button's text (default "Feedback")
 *   data-position  "right" (default) or "left"
 *
 * From the page: window.LiftoffFeedback.open(), .close(), .identify(userId).
 * The widget lives in a shadow root so the page's styles and its own never mix; it sends
 * POST {endpoint}/api/launch/feedback with the key as a bearer token (no cookies).
 */
(function () {
  "use strict";
  if (window.LiftoffFeedback) return;
  var script = document.currentScript;
  if (!script) return;
  var key = script.getAttribute("data-key") || "";
  var endpoint = (script.getAttribute("data-endpoint") || new URL(script.src, location.href).origin).replace(/\/+$/, "");
  var label = script.getAttribute("data-label") || "Feedback";
  var side = script.getAttribute("data-position") === "left" ? "left" : "right";
  var userId = script.getAttribute("data-user") || "";
  var CATEGORIES = [["general", "General"], ["bug", "Something is broken"], ["ux", "Hard to use"],
    ["performance", "Slow"], ["feature", "Feature request"]];

  function anonymousId() {
    var k = "liftoff-feedback-anonymous-id";
    try {
      var id = localStorage.getItem(k);
      if (!id) {
        id = "anon-" + Math.random().toString(36).slice(2, 12);
        localStorage.setItem(k, id);
      }
      return id;
    } catch (e) {
      return "anon-" + Math.random().toString(36).slice(2, 12);
    }
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  var css = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif}",
    ".button{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;background:#1f6feb;color:#fff;",
    "border:0;border-radius:20px;padding:9px 16px;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.25)}",
    ".button:focus-visible,button:focus-visible,textarea:focus-visible,select:focus-visible,input:focus-visible{outline:2px solid #0b4fb3;outline-offset:2px}",
    ".panel{position:fixed;bottom:70px;" + side + ":20px;z-index:2147483001;width:320px;max-width:calc(100vw - 40px);",
    "background:#fff;color:#1b1f24;border:1px solid #d0d7de;border-radius:10px;padding:16px;box-shadow:0 8px 24px rgba(0,0,0,.2)}",
    ".panel[hidden]{display:none}",
    "h2{margin:0 0 10px;font-size:16px;font-weight:600}",
    "label{display:block;margin:10px 0 4px;font-weight:600}",
    ".stars{display:flex;gap:4px}",
    ".star{background:none;border:1px solid #d0d7de;border-radius:6px;width:40px;height:34px;cursor:pointer;font-size:18px;color:#8c959f}",
    ".star[aria-checked=true]{color:#bf8700;border-color:#bf8700;background:#fff8c5}",
    "select,textarea,input{width:100%;padding:6px 8px;border:1px solid #d0d7de;border-radius:6px;background:#fff;color:#1b1f24}",
    "textarea{min-height:80px;resize:vertical}",
    ".row{display:flex;justify-content:space-between;align-items:center;margin-top:12px}",
    ".send{background:#1f883d;color:#fff;border:0;border-radius:6px;padding:7px 14px;cursor:pointer}",
    ".send[disabled]{opacity:.6;cursor:progress}",
    ".cancel{background:none;border:0;color:#57606a;cursor:pointer;text-decoration:underline}",
    ".status{margin-top:10px;min-height:1em}",
    ".status.error{color:#cf222e}.status.ok{color:#1a7f37}",
  ].join("");

  var host = el("div", { id: "liftoff-feedback" });
  var root = host.attachShadow({ mode: "open" });
  var button = el("button", { "class": "button", id: "liftoff-feedback-button", type: "button",
    "aria-haspopup": "dialog", "aria-expanded": "false", text: label });
  var rating = 0;
  var stars = [1, 2, 3, 4, 5].map(function (n) {
    return el("button", { "class": "star", type: "button", role: "radio", "aria-checked": "false",
      "aria-label": n + (n === 1 ? " star" : " stars"), id: "liftoff-feedback-star-" + n, text: "\u2605" });
  });
  var category = el("select", { id: "liftoff-feedback-category" },
    CATEGORIES.map(function (c) { return el("option", { value: c[0], text: c[1] }); }));
  var message = el("textarea", { id: "liftoff-feedback-message", maxlength: "5000",
    placeholder: "What worked, what did not?" });
  var request = el("input", { id: "liftoff-feedback-request", maxlength: "200",
    placeholder: "e.g. Dark mode" });
  var requestRow = el("div", { hidden: "" }, [
    el("label", { "for": "liftoff-feedback-request", text: "Feature you would like" }), request]);
  var status = el("div", { "class": "status", id: "liftoff-feedback-status", role: "status", "aria-live": "polite" });
  var send = el("button", { "class": "send", id: "liftoff-feedback-send", type: "submit", text: "Send" });
  var cancel = el("button", { "class": "cancel", type: "button", text: "Cancel" });
  var form = el("form", { novalidate: "" }, [
    el("h2", { id: "liftoff-feedback-title", text: "How is it going?" }),
    el("div", { "class": "stars", role: "radiogroup", "aria-label": "Rating" }, stars),
    el("label", { "for": "liftoff-feedback-category", text: "About" }), category,
    requestRow,
    el("label", { "for": "liftoff-feedback-message", text: "Message" }), message,
    el("div", { "class": "row" }, [cancel, send]),
    status,
  ]);
  var panel = el("div", { "class": "panel", id: "liftoff-feedback-panel", role: "dialog",
    "aria-modal": "false", "aria-labelledby": "liftoff-feedback-title", hidden: "" }, [form]);
  root.appendChild(el("style", { text: css }));
  root.appendChild(button);
  root.appendChild(panel);

  function setRating(n) {
    rating = n;
    stars.forEach(function (s, i) { s.setAttribute("aria-checked", String(i < n)); });
  }
  function say(text, kind) {
    status.textContent = text;
    status.className = "status" + (kind ? " " + kind : "");
  }
  function open() {
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    (rating ? message : stars[0]).focus();
  }
  function close() {
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    button.focus();
  }

  stars.forEach(function (s, i) {
    s.addEventListener("click", function () { setRating(i + 1); });
  });
  category.addEventListener("change", function () { requestRow.hidden = category.value !== "feature"; });
  button.addEventListener("click", function () { panel.hidden ? open() : close(); });
  cancel.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") close(); });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    if (!rating) { say("Choose a rating from 1 to 5 stars.", "error"); return; }
    if (!key) { say("This widget has no data-key; ask the site owner to add an ingest key.", "error"); return; }
    var body = {
      user_id: userId || anonymousId(),
      rating: rating,
      category: category.value,
      message: message.value.trim(),
      page: location.pathname.slice(0, 2000),
    };
    if (category.value === "feature" && request.value.trim()) body.request = request.value.trim();
    send.disabled = true;
    say("Sending\u2026");
    fetch(endpoint + "/api/launch/feedback", {
      method: "POST",
      mode: "cors",
      credentials: "omit",
      headers: { "Content-Type": "application/json", "Authorization": "Bearer " + key },
      body: JSON.stringify(body),
    }).then(function (res) {
      if (res.ok) {
        say("Thank you, we read every message.", "ok");
        message.value = "";
        request.value = "";
        setRating(0);
        setTimeout(function () { if (!panel.hidden) close(); say(""); }, 2500);
        return;
      }
      return res.json().catch(function () { return {}; }).then(function (problem) {
        var wait = res.headers.get("Retry-After");
        say((problem.detail || problem.title || ("Could not send (" + res.status + ")")) +
          (wait ? " Try again in " + wait + " s." : ""), "error");
      });
    }, function () {
      say("Could not reach the feedback service; check your connection and try again.", "error");
    }).then(function () { send.disabled = false; });
  });

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  window.LiftoffFeedback = {
    open: open,
    close: close,
    identify: function (id) { userId = String(id || ""); },
  };
})();
