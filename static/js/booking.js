/* Emhana booking pages: progressive enhancement only.
 * - forms marked data-once are not submitted twice (the server is idempotent anyway: same client_key);
 * - the hold countdown on the checkout page;
 * - card payment: Stripe.js Card Element -> createPaymentMethod -> POST the id to our API, which creates and
 *   confirms the PaymentIntent on the server; on requires_action, confirmCardPayment (3-D Secure), then POST
 *   again so the server re-reads the intent. All texts come translated from data attributes.
 */
(function () {
  "use strict";

  function onceForms() {
    document.querySelectorAll("form[data-once]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (form.dataset.sent === "1") { event.preventDefault(); return; }
        form.dataset.sent = "1";
        form.querySelectorAll("button[type=submit]").forEach(function (b) { b.setAttribute("aria-disabled", "true"); });
        // let the user try again if the page did not change (e.g. the network failed)
        setTimeout(function () { form.dataset.sent = ""; }, 8000);
      });
    });
  }

  function countdown() {
    var el = document.getElementById("hold-countdown");
    if (!el) return;
    var left = parseInt(el.dataset.seconds, 10);
    if (isNaN(left)) return;
    var ends = Date.now() + left * 1000;
    function pad(n) { return (n < 10 ? "0" : "") + n; }
    function tick() {
      var s = Math.max(0, Math.round((ends - Date.now()) / 1000));
      if (s <= 0) {
        el.textContent = el.dataset.textExpired;
        el.classList.add("msg-error");
        var button = document.getElementById("pay-button");
        if (button) button.disabled = true;
        return;
      }
      var text = Math.floor(s / 60) + ":" + pad(s % 60);
      el.textContent = (el.dataset.textLeft || "%(time)s").replace("%(time)s", text);
      // a screen reader hears the change once a minute, not every second
      el.setAttribute("aria-live", s % 60 === 0 ? "polite" : "off");
      setTimeout(tick, 1000);
    }
    tick();
  }

  function csrfToken(form) {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function cardPayment() {
    var form = document.getElementById("card-form");
    if (!form) return;
    var errors = document.getElementById("card-errors");
    var status = document.getElementById("card-status");
    var button = document.getElementById("pay-button");
    var needsJs = document.getElementById("card-needs-js");
    function showError(text) {
      errors.textContent = text || form.dataset.msgGeneric;
      status.textContent = "";
      button.disabled = false;
      errors.focus && errors.setAttribute("tabindex", "-1");
    }
    if (typeof window.Stripe !== "function") {
      if (needsJs) needsJs.textContent = form.dataset.msgLoad;
      return;
    }
    var stripe, card;
    try {
      stripe = window.Stripe(form.dataset.pk);
      card = stripe.elements().create("card", { hidePostalCode: true });
      card.mount("#card-element");
    } catch (e) {
      if (needsJs) needsJs.textContent = form.dataset.msgLoad;
      return;
    }
    form.hidden = false;
    if (needsJs) needsJs.hidden = true;
    if (card.on) card.on("change", function (ev) { errors.textContent = ev && ev.error ? ev.error.message : ""; });

    function post(pm) {
      return fetch(form.dataset.payUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(form), "Accept": "application/json" },
        body: JSON.stringify({ payment_method: pm })
      }).then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (body) {
          return { ok: resp.ok, status: resp.status, body: body };
        });
      });
    }

    function done() { window.location.assign(form.dataset.doneUrl); }

    function handle(result, pm, secondPass) {
      var body = result.body || {};
      if (!result.ok) { showError(body.message || body.detail); return; }
      if (body.state === "succeeded" || body.booking_state === "confirmed") { done(); return; }
      if (body.state === "processing") { done(); return; }
      if (body.state === "requires_action" && body.client_secret && !secondPass) {
        status.textContent = form.dataset.msg3ds;
        return stripe.confirmCardPayment(body.client_secret).then(function (r) {
          // either way, let the server re-read the intent so that its record is up to date
          return post(pm).then(function (again) {
            if (r && r.error && !(again.body && again.body.state === "succeeded")) {
              showError((again.body && again.body.message) || r.error.message);
              return;
            }
            handle(again, pm, true);
          });
        });
      }
      showError();
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button.disabled) return;
      button.disabled = true;
      errors.textContent = "";
      status.textContent = form.dataset.msgPaying;
      stripe.createPaymentMethod({ type: "card", card: card }).then(function (r) {
        if (r.error) { showError(r.error.message); return; }
        var pm = r.paymentMethod.id;
        return post(pm).then(function (result) { return handle(result, pm, false); });
      }).catch(function () { showError(form.dataset.msgNetwork); });
    });
  }

  function start() { onceForms(); countdown(); cardPayment(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
