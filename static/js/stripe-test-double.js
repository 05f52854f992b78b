/* A small stand-in for Stripe.js v3, for development and browser tests against localstripe only.
 * Loaded instead of https://js.stripe.com/v3/ when settings.STRIPE_JS_TEST_DOUBLE is true.
 * Same surface as the parts booking.js uses:
 *   Stripe(pk).elements().create("card").mount(selector)   plain inputs: cardnumber, exp-date, cvc
 *   stripe.createPaymentMethod({type: "card", card})        -> POST /stripe-test/payment-method/
 *   stripe.confirmCardPayment(clientSecret)                 -> a "3-D Secure" dialog with two buttons,
 *        #stripe-3ds-complete and #stripe-3ds-fail, then POST /stripe-test/authenticate/
 * Results look like Stripe's: {paymentMethod: {id}} / {paymentIntent: {id, status}} / {error: {message}}.
 */
(function () {
  "use strict";
  var BASE = "/stripe-test/";

  function postJSON(path, data) {
    return fetch(BASE + path, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(data)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (!resp.ok) return { error: body.error || { message: "Card error (" + resp.status + ")" } };
        return body;
      });
    }, function () { return { error: { message: "Network error" } }; });
  }

  function input(name, label, attrs) {
    var wrap = document.createElement("label");
    wrap.style.display = "block";
    wrap.textContent = label + " ";
    var el = document.createElement("input");
    el.name = name;
    el.autocomplete = attrs.autocomplete || "off";
    el.inputMode = "numeric";
    if (attrs.placeholder) el.placeholder = attrs.placeholder;
    if (attrs.value) el.value = attrs.value;
    wrap.appendChild(el);
    return { wrap: wrap, el: el };
  }

  function CardElement() { this.fields = null; this.handlers = {}; }
  CardElement.prototype.mount = function (target) {
    var node = typeof target === "string" ? document.querySelector(target) : target;
    if (!node) throw new Error("mount target not found: " + target);
    // labels in the page's language come from the mount node (data-label-number, -exp, -cvc)
    var labels = node.dataset || {};
    var number = input("cardnumber", labels.labelNumber || "Card number", { autocomplete: "cc-number", placeholder: "4242 4242 4242 4242" });
    var exp = input("exp-date", labels.labelExp || "MM / YY", { autocomplete: "cc-exp", value: "12 / 34" });
    var cvc = input("cvc", labels.labelCvc || "CVC", { autocomplete: "cc-csc", value: "123" });
    node.innerHTML = "";
    node.setAttribute("data-stripe-test-double", "1");
    [number, exp, cvc].forEach(function (f) { node.appendChild(f.wrap); });
    this.fields = { number: number.el, exp: exp.el, cvc: cvc.el };
    var self = this;
    number.el.addEventListener("input", function () { (self.handlers.change || []).forEach(function (h) { h({}); }); });
    return this;
  };
  CardElement.prototype.on = function (name, handler) { (this.handlers[name] = this.handlers[name] || []).push(handler); };
  CardElement.prototype.number = function () { return this.fields ? this.fields.number.value.replace(/\s+/g, "") : ""; };

  function threeDSDialog() {
    return new Promise(function (resolve) {
      var box = document.createElement("div");
      box.id = "stripe-3ds";
      box.setAttribute("role", "dialog");
      box.setAttribute("aria-modal", "true");
      box.setAttribute("aria-label", "3-D Secure (test)");
      box.style.cssText = "position:fixed;inset:0;background:rgba(0,0,0,.5);display:flex;align-items:center;" +
        "justify-content:center;z-index:1000";
      var panel = document.createElement("div");
      panel.style.cssText = "background:#fff;padding:1rem;border-radius:8px;max-width:20rem";
      panel.innerHTML = "<p>3-D Secure test: complete the authentication?</p>";
      [["stripe-3ds-complete", "Complete", true], ["stripe-3ds-fail", "Fail", false]].forEach(function (b) {
        var btn = document.createElement("button");
        btn.type = "button"; btn.id = b[0]; btn.textContent = b[1]; btn.style.marginRight = ".5rem";
        btn.addEventListener("click", function () { document.body.removeChild(box); resolve(b[2]); });
        panel.appendChild(btn);
      });
      box.appendChild(panel);
      document.body.appendChild(box);
      panel.querySelector("button").focus();
    });
  }

  function StripeDouble(pk) {
    if (!(this instanceof StripeDouble)) return new StripeDouble(pk);
    this.pk = pk;
  }
  StripeDouble.prototype.elements = function () {
    return { create: function (type) {
      if (type !== "card") throw new Error("the test double only has the card element");
      return new CardElement();
    } };
  };
  StripeDouble.prototype.createPaymentMethod = function (opts) {
    var card = opts && (opts.card || (opts.payment_method && opts.payment_method.card));
    if (!card || !card.number) return Promise.resolve({ error: { message: "No card element" } });
    var number = card.number();
    if (!/^\d{12,19}$/.test(number)) return Promise.resolve({ error: { message: "Your card number is incomplete." } });
    return postJSON("payment-method/", { number: number }).then(function (body) {
      if (body.error) return body;
      return { paymentMethod: { id: body.id, type: "card" } };
    });
  };
  StripeDouble.prototype.confirmCardPayment = function (clientSecret) {
    return threeDSDialog().then(function (success) {
      return postJSON("authenticate/", { client_secret: clientSecret, success: success });
    }).then(function (body) {
      if (body.error) return body;
      if (body.status === "succeeded" || body.status === "requires_capture" || body.status === "processing") {
        return { paymentIntent: { id: body.id, status: body.status } };
      }
      return { error: { message: "The card's security check was not completed.", payment_intent: body } };
    });
  };
  window.Stripe = StripeDouble;
})();
